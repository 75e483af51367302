"""The denoising training loss with per-frame masks, per-frame noise levels and SNR weighting."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from .masks import noise_given_frames
from .parameterization import expand_like, target_of
from .schedules import NoiseSchedule

__all__ = ["loss_weight", "diffusion_loss"]


def loss_weight(kind: str, prediction: str, log_snr: Tensor, gamma: float = 5.0,
                floor: float = 0.0) -> Tensor:
    """Per-sample weight of the MSE on the prediction target.

    ``uniform``: 1. ``min_snr``: Min-SNR-gamma (Hang et al. 2023), the x0-space weight
    ``min(SNR, gamma)`` expressed for the chosen target: divided by ``SNR`` for ``eps``, by
    ``SNR + 1`` for ``v`` and by ``(1 + sqrt(SNR))^2 = 1 / t^2`` for rectified flow's ``flow``
    (``x0 = z - t u``). ``floor`` > 0 bounds the x0-space weight below,
    ``clamp(SNR, floor, gamma)`` (``floor=1``: truncated SNR, Salimans & Ho 2022, capped).
    """
    if kind == "uniform":
        if floor:
            raise ValueError("snr_floor applies to min_snr weighting only")
        return torch.ones_like(log_snr)
    if kind != "min_snr":
        raise ValueError(f"unknown loss weighting {kind!r}; choose uniform or min_snr")
    snr = torch.exp(log_snr.clamp(-30, 30))
    w = snr.clamp(min=floor, max=gamma)
    if prediction == "eps":
        return w / snr
    if prediction == "v":
        return w / (snr + 1)
    if prediction == "flow":
        return w / (1 + snr.sqrt()) ** 2
    return w


def diffusion_loss(net: Callable[..., Tensor], schedule: NoiseSchedule, x0: Tensor, *,
                   prediction: str = "eps", weighting: str = "uniform", snr_gamma: float = 5.0,
                   snr_floor: float = 0.0,
                   t: Tensor | None = None, noise: Tensor | None = None,
                   given: Tensor | None = None, cond_t: Tensor | float = 0.0,
                   frame_weight: Tensor | None = None,
                   generator: torch.Generator | None = None, **cond: Any) -> Tensor:
    """Mean weighted MSE of the network's prediction of its target.

    Args:
        net: called as ``net(z_t, t, **cond)`` with ``t`` ``(B,)`` or ``(B, F)``.
        x0: clean data ``(B, C, F, H, W)`` (or ``(B, C, H, W)`` / ``(B, D)`` without frame masks).
        t: training times; sampled from the schedule when ``None``.
        given: bool ``(B, F)``, frames given as conditions: they are noised only to ``cond_t``
            (0 = clean; LVDM's perturbation draws it at random) and excluded from the loss.
        frame_weight: optional ``(B, F)`` extra per-frame weight (e.g. padding masks).
        cond: passed to ``net`` (context, ``frame_mask``, ``frame_groups`` ...). When ``given`` is
            set and ``net`` accepts it, pass ``frame_mask=given`` yourself.
    Returns:
        scalar loss.
    """
    B = x0.shape[0]
    if t is None:
        t = schedule.sample_t((B,), generator=generator, device=x0.device)
    t = noise_given_frames(t, given, cond_t)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    alpha, sigma = schedule.alpha_sigma(t)
    z = expand_like(alpha, x0) * x0 + expand_like(sigma, x0) * noise
    out = net(z, t, **cond)
    target = target_of(prediction, x0, noise, alpha, sigma)
    err = (out.float() - target.float()) ** 2
    w = loss_weight(weighting, prediction, schedule.log_snr(t), snr_gamma, snr_floor)  # (B,) or (B, F)
    if err.ndim == 5 and (w.ndim == 2 or given is not None or frame_weight is not None):
        per_frame = err.mean(dim=(1, 3, 4))  # (B, F)
        w = w.reshape(B, 1).expand_as(per_frame) if w.ndim == 1 else w
        keep = torch.ones_like(per_frame) if given is None else (~given).float()
        if frame_weight is not None:
            keep = keep * frame_weight
        return (per_frame * w * keep).sum() / keep.sum().clamp_min(1.0)
    per_sample = err.reshape(B, -1).mean(dim=1)
    return (per_sample * w).mean()
