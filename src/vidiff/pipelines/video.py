"""Video generation (unconditional, class- or fps-conditioned, given frames), diffusers style.

``pipe = VideoDiffusionPipeline.from_pretrained(checkpoint_dir)``;
``frames = pipe(num_videos=4, num_frames=8, num_inference_steps=50, sampler="ddim")`` returns
uint8 ``(N, F, H, W, 3)`` (``output_type="np"``) or float ``(N, C, F, H, W)`` in ``[-1, 1]``
(``"pt"``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..conditioning import (condition_encoders, encoder_arguments, encoder_value,
                            model_conditions)
from ..conditioning.labels import random_class_labels
from ..config import DiffusionConfig, ExperimentConfig
from ..diffusion import (AutoGuidance, ClassifierFreeGuidance, FrameConditioning,
                         NetworkDenoiser, build_schedule, sample)
from ..diffusion.samplers import Callback, check_sampler_options
from ..models.autoencoder import Autoencoder
from ..models.modeling import ModelMixin, load_model
from ..ranges import check_range
from ..registry import ENCODERS, PIPELINES
from ..training.checkpoint import resolve_checkpoint
from .base import DiffusionPipeline
from ..devices import check_fits, is_out_of_memory, out_of_memory_error
from .guards import FiniteWatch

__all__ = ["VideoDiffusionPipeline", "same_encoder"]


def same_encoder(a, b) -> bool:
    """Whether two autoencoders map clips to the same latents (identical encoder weights)."""
    sa = [t for m in a.encoder_modules() for t in m.state_dict().values()]
    sb = [t for m in b.encoder_modules() for t in m.state_dict().values()]
    return len(sa) == len(sb) and all(x.shape == y.shape and torch.equal(x, y)
                                      for x, y in zip(sa, sb))


@PIPELINES.register()
class VideoDiffusionPipeline(DiffusionPipeline):
    """A denoiser and its diffusion settings; optionally an ``autoencoder`` (latent diffusion),
    a ``guide`` model (autoguidance) and a ``key`` pipeline (hierarchical long video).

    Args:
        model: the denoiser (e.g. :class:`~vidiff.models.UNet3D`).
        diffusion: schedule, prediction type and clipping.
        experiment: the recipe the model was trained with (sampling defaults).
        autoencoder, guide_model, key_pipeline: the optional components.
    """

    _schedule: tuple[Any, Any] = (None, None)  # (the schedule's config, the schedule)

    def __init__(self, model: ModelMixin, diffusion: DiffusionConfig,
                 experiment: ExperimentConfig | None = None, autoencoder: ModelMixin | None = None,
                 guide_model: ModelMixin | None = None,
                 key_pipeline: "VideoDiffusionPipeline | None" = None):
        super().__init__(experiment, denoiser=model, autoencoder=autoencoder, guide=guide_model,
                         key=key_pipeline)
        self.experiment.diffusion = diffusion

    @property
    def diffusion(self) -> DiffusionConfig:
        """Schedule, prediction type and clipping: the recipe's ``diffusion`` section."""
        return self.experiment.diffusion

    @property
    def schedule(self):
        """The noise schedule of :attr:`diffusion` (rebuilt when its config changes)."""
        cfg = self.diffusion.schedule
        if self._schedule[0] != cfg:
            self._schedule = (copy.deepcopy(cfg), build_schedule(cfg))
        return self._schedule[1]

    @classmethod
    def check_components(cls, d: Path, components: dict[str, Any]) -> None:
        super().check_components(d, components)
        guide = components.get("guide")
        if guide is not None and (isinstance(guide, Autoencoder)
                                  or not isinstance(guide, ModelMixin)):
            raise ValueError(f"{d}: its guide holds a {type(guide).__name__}, not a denoiser "
                             "like its own (autoguidance needs a weaker model of the same data)")
        ae = components.get("autoencoder")
        if ae is not None and not isinstance(ae, Autoencoder):
            raise ValueError(f"{d}: its autoencoder holds a {type(ae).__name__}, not an "
                             "autoencoder")

    # -- components by name -----------------------------------------------------------------
    @property
    def model(self) -> ModelMixin:
        return self.components["denoiser"]

    @property
    def autoencoder(self):
        """Latent diffusion: the denoiser works on ``autoencoder.latents(x)``; outputs are decoded."""
        return self.components.get("autoencoder")

    @autoencoder.setter
    def autoencoder(self, ae) -> None:
        self.components["autoencoder"] = ae

    @property
    def guide_model(self) -> ModelMixin | None:
        """Autoguidance: a weaker model of the same data and diffusion settings."""
        return self.components.get("guide")

    @guide_model.setter
    def guide_model(self, m: ModelMixin | None) -> None:
        self.register_modules(guide=m)

    @property
    def key_pipeline(self) -> "VideoDiffusionPipeline | None":
        """Hierarchical long video: the model of the key-frame rate (sharing this autoencoder)."""
        return self.components.get("key")

    @key_pipeline.setter
    def key_pipeline(self, p: "VideoDiffusionPipeline | None") -> None:
        self.components["key"] = p

    # -- companions -------------------------------------------------------------------------
    def _load_companion(self, path: str | Path, what: str) -> "VideoDiffusionPipeline":
        """A checkpoint that samples alongside this one (guide, key-frame model); it must share
        this pipeline's noise schedule and prediction type."""
        other = VideoDiffusionPipeline.from_pretrained(path, device=str(self.device))
        if (other.diffusion.schedule != self.diffusion.schedule
                or other.diffusion.prediction != self.diffusion.prediction):
            raise ValueError(f"{path}: {what} needs the same noise schedule and prediction "
                             "type as the model it works with")
        return other

    def attach_key_pipeline(self, path: str | Path) -> None:
        """Use the checkpoint at ``path`` as the key-frame model of hierarchical generation.
        It must work in this pipeline's latent space: the same encoder (its decoder is not
        used), schedule and prediction type."""
        other = self._load_companion(path, "a key-frame model")
        if (other.autoencoder is None) != (self.autoencoder is None):
            raise ValueError(f"{path}: a key-frame model must be latent exactly when this "
                             "pipeline is")
        if self.autoencoder is not None:
            if not (self.autoencoder.scale_factor == other.autoencoder.scale_factor
                    and same_encoder(self.autoencoder, other.autoencoder)):
                raise ValueError(f"{path}: the key-frame model was trained on another "
                                 "autoencoder's latents (encoder or scale factor differ)")
            other.autoencoder = self.autoencoder
        self.key_pipeline = other

    def replace_decoder(self, path: str | Path) -> None:
        """Decode with the autoencoder at ``path``: one whose decoder was fine-tuned with the
        encoder frozen (``autoencoder_loss.freeze_encoder``), so this latent model's latent space
        is unchanged. The latent scale factor stays the one the model was trained with."""
        if self.autoencoder is None:
            raise ValueError("replace_decoder: this pipeline has no autoencoder")
        new = load_model(resolve_checkpoint(path), map_location=str(self.device)).eval()
        if type(new) is not type(self.autoencoder) or not same_encoder(self.autoencoder, new):
            raise ValueError(f"{path}: its encoder differs from the one this model was trained "
                             "on; only a decoder fine-tuned with freeze_encoder can replace it")
        new.scale_factor = self.autoencoder.scale_factor
        self.autoencoder = new
        if self.key_pipeline is not None:
            self.key_pipeline.autoencoder = new

    def attach_guide(self, path: str | Path) -> None:
        """Use the checkpoint at ``path`` as the autoguidance model. It must share this
        pipeline's schedule, parameterisation and sample shape (a smaller or shorter-trained
        model of the same data)."""
        other = self._load_companion(path, "a guide model")
        if other.sample_shape(1, None) != self.sample_shape(1, None):
            raise ValueError(f"{path}: a guide model must work on the same sample shape "
                             f"({other.sample_shape(1, None)} vs {self.sample_shape(1, None)})")
        self.guide_model = other.model

    # -- shapes -----------------------------------------------------------------------------
    def sample_shape(self, num_videos: int, num_frames: int | None) -> tuple[int, ...]:
        """``(N, C, F, H, W)`` in the denoiser's space for ``num_frames`` pixel frames (default:
        the checkpoint's sampling default, else the clip the model was trained on). Sizes come
        from the denoiser's config (``sample_size``, ``num_frames``: its own space) and the
        autoencoder's factors.

        Raises:
            ValueError: frames or size not divisible by the autoencoder's factors.
        """
        ft = self.autoencoder.factors[0] if self.autoencoder is not None else 1
        _, size = self.trained_shape()  # in the denoiser's space
        F = num_frames or self.clip_size[0]
        if F % ft:
            raise ValueError(f"num_frames ({F}) must be divisible by f_t={ft}")
        return (num_videos, self.model.config.out_channels, F // ft, size, size)

    def trained_shape(self) -> tuple[int, int]:
        """``(num_frames, sample_size)`` the denoiser generates, in its own space (its
        ``sample_shape``); a checkpoint written before models recorded it takes it from its
        recipe's data section, as it was trained (``scripts/convert_legacy_checkpoint.py``
        records it once)."""
        frames, size = self.model.sample_shape
        if frames is None or size is None:
            ft, fs = self.autoencoder.factors if self.autoencoder is not None else (1, 1)
            data_frames, data_size = self.experiment.data.clip_shape()
            frames, size = frames or data_frames // ft, size or data_size // fs
        return frames, size

    @property
    def clip_size(self) -> tuple[int, int]:
        """``(frames, size)`` of the clips a call makes by default, in pixels."""
        ft, fs = self.autoencoder.factors if self.autoencoder is not None else (1, 1)
        frames, size = self.trained_shape()
        return self.experiment.sample.num_frames or frames * ft, size * fs

    # -- sampling ---------------------------------------------------------------------------
    def denoiser(self, autocast: bool = False, model: ModelMixin | None = None,
                 **cond: Any) -> NetworkDenoiser:
        """``(z, t) -> x0_hat`` of :attr:`model` (or of ``model``, e.g. the guide model)."""
        dt = torch.bfloat16 if autocast else None
        net = model or self.model
        return NetworkDenoiser(net, self.schedule, self.diffusion.prediction,
                               clip=self.diffusion.clip, autocast_dtype=dt,
                               dtype=next(net.parameters()).dtype, **cond)

    def _conditions(self, values: dict[str, Any], n: int, generator, guidance_scale: float
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Conditional / unconditional keyword conditioning from the condition encoders the
        denoiser declares (``accepted_conditions``)."""
        accepted = model_conditions(self.model)
        cond: dict[str, Any] = {}
        uncond: dict[str, Any] = {}
        encoders = self.condition_encoders()
        for name, enc_cls in ENCODERS.items():
            args = encoder_arguments(name, enc_cls)
            if name not in accepted:
                given = [a for a in args if values.get(a) is not None]
                if given:
                    raise ValueError(f"this model takes no {given[0]} (it accepts "
                                     f"{sorted(accepted)})")
                continue
            value = encoder_value(name, enc_cls, values)
            pair = encoders[name].for_sampling(self.model, value, n, device=self.device,
                                               generator=generator,
                                               guidance_scale=guidance_scale,
                                               defaults=self.experiment.sample)
            if pair is not None:
                cond[name], uncond[name] = pair
        return cond, uncond

    @staticmethod
    def videos_for(num_videos: int, values: dict[str, Any]) -> int:
        """The batch a call makes: ``num_videos``, or with the default 1 the number a condition
        given per video asks for (a list of prompts, of first frames, of trajectory sets)."""
        if num_videos != 1:
            return num_videos
        asked = [n for name, e in ENCODERS.items()
                 if (n := e.videos_given(encoder_value(name, e, values))) is not None]
        return asked[0] if asked else num_videos

    def condition_encoders(self) -> dict[str, Any]:
        """The condition encoders of the denoiser's conditions (built once: a text encoder
        loads its weights), by the keyword each feeds."""
        key = (id(self.model), str(self.device))
        if getattr(self, "_encoders", (None,))[0] != key:
            self._encoders = (key, condition_encoders(self.model, self.experiment, self.device,
                                                      self.components))
        return self._encoders[1]

    def random_class_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` labels drawn uniformly from a class-conditional model's classes."""
        if self.model.num_classes is None:
            raise ValueError("this model is not class-conditional")
        return random_class_labels(self.model.num_classes, n, generator)

    @torch.no_grad()
    def __call__(self, num_videos: int = 1, num_frames: int | None = None,
                 num_inference_steps: int | None = None, sampler: str | None = None,
                 guidance_scale: float | None = None, generator: torch.Generator | None = None,
                 given_frames: Tensor | None = None, given_mask: Tensor | None = None,
                 conditioning_method: str = "reconstruction", guidance_weight: float = 2.0,
                 cond_t: float | None = None, uncond_weight: float = 0.0,
                 autoguidance_scale: float | None = None,
                 autoguidance_interval: tuple[float, float] | None = None,
                 output_type: str = "np", progress: bool | None = None, autocast: bool = False,
                 callback: Callback | None = None, timesteps: Tensor | None = None,
                 **kwargs: Any):
        """Generate ``num_videos`` clips.

        Conditions the denoiser declares are keyword arguments named after their encoder
        (:data:`~vidiff.registry.ENCODERS`): ``class_labels`` (class-conditional; drawn when
        guiding without one), ``fps``, ``prompt`` and ``negative_prompt`` (text models: a string,
        or a list of one per video; a list with the default ``num_videos=1`` gives one video a
        prompt; the negative prompt is what guidance steers away from, ignored when
        ``guidance_scale`` is 0). Other keyword arguments are options of ``sampler``
        (read from its signature: ``eta``, ``gamma``, ``delta``, ``corrector_steps``).
        ``callback(step, t, z, x0_hat)`` is called after every sampler step (model space).
        ``timesteps``: the sampler's time grid, ``(K+1,)`` or per frame ``(K+1, F)`` (in model
        frames), instead of ``num_inference_steps`` evenly spaced steps.

        ``given_frames`` ``(N, C, F, H, W)`` in ``[-1, 1]`` with bool ``given_mask`` ``(N, F)``
        conditions on known frames (extension, interpolation) by ``conditioning_method``
        (``"replacement"`` or ``"reconstruction"`` with weight ``guidance_weight``). ``cond_t``
        is the given frames' noise level: ``None`` noises them to the current ``t`` (a model
        trained without given frames, VDM); a float (0 = clean) for models trained with frame
        masks, whose mask channel is then set too. ``uncond_weight`` is LVDM's unconditional
        guidance. ``autoguidance_scale`` (default: the checkpoint's) guides away from
        :attr:`guide_model`: ``(1 + w) D - w D_guide``, at the noise levels ``lo < t <= hi`` of
        ``autoguidance_interval`` (default: the checkpoint's; ``(0, 1)`` = every step). For a
        latent pipeline ``given_frames`` are latents (see :meth:`encode`) and
        ``output_type="latent"`` returns latents without decoding.

        Raises:
            ValueError: an unknown sampler or sampler option, guidance without a condition or
                guide model, a condition the model does not take, a bad output type.
        """
        for name, value, spec in (("num_videos", num_videos, ">= 1"),
                                  ("num_frames", num_frames, ">= 1"),
                                  ("num_inference_steps", num_inference_steps, ">= 1"),
                                  ("guidance_scale", guidance_scale, ">= 0"),
                                  ("autoguidance_scale", autoguidance_scale, ">= 0"),
                                  ("guidance_weight", guidance_weight, ">= 0"),
                                  ("uncond_weight", uncond_weight, ">= 0"),
                                  ("cond_t", cond_t, "[0, 1]")):
            if value is not None:
                check_range(name, value, spec)
        s = self.experiment.sample
        sampler = sampler or s.sampler
        steps = num_inference_steps or s.steps
        w = s.guidance_scale if guidance_scale is None else guidance_scale
        w_ag = s.autoguidance_scale if autoguidance_scale is None else autoguidance_scale
        ag_interval = autoguidance_interval or s.autoguidance_interval
        if w_ag and self.guide_model is None:
            raise ValueError("autoguidance_scale needs a guide model (a guide/ folder in the "
                             "checkpoint, or pipe.guide_model)")
        names = {a for n, e in ENCODERS.items() for a in encoder_arguments(n, e)}
        values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        num_videos = self.videos_for(num_videos, values)
        check_sampler_options(sampler, kwargs)  # what is left must be sampler options
        shape = self.sample_shape(num_videos, num_frames)
        ft, fs = self.autoencoder.factors if self.autoencoder is not None else (1, 1)
        pixels = num_videos * 3 * shape[2] * ft * shape[3] * fs * shape[4] * fs
        if self.device.type == "cpu":  # the decoded float clips and their uint8 copy
            check_fits(pixels * 9 if output_type != "latent" else 0, num_videos,
                       shape[2] * ft, shape)
        dev = self.device
        cond, uncond = self._conditions(values, num_videos, generator, w)
        base = self.denoiser(autocast)
        den = base.with_cond(**cond)
        if w and not any(ENCODERS.get(k).guides for k in cond):
            raise ValueError("guidance_scale needs a condition to guide towards (class_labels "
                             "on a class-conditional model)")
        if w and uncond:
            den = ClassifierFreeGuidance(base, w, cond, uncond)
        if w_ag:
            weak = self.denoiser(autocast, model=self.guide_model, **cond)
            den = AutoGuidance(den, weak, w_ag, clip=self.diffusion.clip, interval=ag_interval)
        if given_frames is not None:
            if given_mask is None:
                raise ValueError("given_frames needs given_mask (N, F)")
            den = FrameConditioning(den, self.schedule, given_frames.to(dev).float(),
                                    given_mask.to(dev), method=conditioning_method,
                                    weight=guidance_weight, cond_t=cond_t,
                                    pass_mask="frame_mask" in model_conditions(self.model),
                                    uncond_weight=uncond_weight, generator=generator)
        watch = FiniteWatch(callback, steps if timesteps is None else len(timesteps) - 1)
        try:
            z = torch.randn(shape, generator=generator).to(dev)
            x = sample(sampler, den, self.schedule.for_shape(shape), z, steps, ts=timesteps,
                       generator=generator,
                       progress=self.progress if progress is None else progress,
                       callback=watch, **kwargs)
            watch.check({"denoiser": self.model, "guide model": self.guide_model})
            out = self.postprocess(x, output_type)
        except (MemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            raise out_of_memory_error(e, num_videos, shape[2] * self.frames_per_step,
                                      shape) from e
        return out

    # -- frame-conditioned models -----------------------------------------------------------
    @property
    def frame_conditioned(self) -> bool:
        """Whether the model was trained with given frames (frame-mask mix): then given frames
        go in clean or slightly noised (``cond_t`` >= 0); otherwise VDM-style (noised to ``t``,
        reconstruction guidance)."""
        return self.experiment.diffusion.frame_masks.active

    def conditioning_defaults(self) -> dict[str, Any]:
        if self.frame_conditioned:
            return {"cond_t": 0.0, "conditioning_method": "replacement"}
        return {"cond_t": None, "conditioning_method": "reconstruction"}

    def extend(self, video: Tensor, total_frames: int, context_frames: int | None = None,
               **kw: Any) -> np.ndarray:
        """Autoregressive extension (:class:`~vidiff.pipelines.VideoExtensionPipeline` over this
        pipeline's components); returns uint8 ``(N, total_frames, H, W, 3)``."""
        return PIPELINES.get("VideoExtensionPipeline").from_pipe(self)(
            video, total_frames, context_frames, **kw)
