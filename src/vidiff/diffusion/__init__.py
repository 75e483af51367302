"""Diffusion math: schedules, parameterisations, losses, samplers and guidance (all stateless)."""

from .denoiser import Denoiser, NetworkDenoiser
from .guidance import AutoGuidance, ClassifierFreeGuidance, FrameConditioning
from .masks import (MASK_MODES, FrameMaskConfig, frame_mask, mode_mask, noise_given_frames,
                    sample_frame_masks)
from .losses import diffusion_loss, loss_weight
from .ode_samplers import ode_velocity, sample_euler, sample_heun
from .parameterization import PREDICTIONS, expand_like, target_of, to_eps, to_x0
from .samplers import (SAMPLERS, posterior, sample, sample_ancestral, sample_ddim, sample_ddpm,
                       sample_dpmpp_2m, sample_pc, sampler_options)
from .schedules import (CosineLogSNRSchedule, DiscreteSchedule, NoiseSchedule,
                        RectifiedFlowSchedule, ScheduleConfig, build_schedule,
                        make_beta_schedule, rescale_zero_terminal_snr, shift_time)

__all__ = [
    "Denoiser", "NetworkDenoiser", "MASK_MODES", "FrameMaskConfig", "mode_mask", "sample_frame_masks", "AutoGuidance", "ClassifierFreeGuidance", "FrameConditioning", "frame_mask",
    "diffusion_loss", "loss_weight", "noise_given_frames", "PREDICTIONS", "expand_like",
    "target_of", "to_eps", "to_x0", "SAMPLERS", "posterior", "sample", "sample_ancestral",
    "sample_ddim", "sample_ddpm", "sample_dpmpp_2m", "sample_pc", "sampler_options", "CosineLogSNRSchedule",
    "DiscreteSchedule", "NoiseSchedule", "ScheduleConfig", "build_schedule",
    "make_beta_schedule", "rescale_zero_terminal_snr", "RectifiedFlowSchedule", "shift_time",
    "ode_velocity", "sample_euler", "sample_heun",
]
