"""The bridge between a network and the samplers: a callable ``(z, t) -> x0_hat``.

Samplers only ever see a *denoiser*: a function from a noisy sample ``z`` and its time ``t``
(``(B,)`` or ``(B, F)``) to the estimate of the clean data ``x0_hat``. :class:`NetworkDenoiser`
makes one from a network of any parameterisation; guidance wrappers
(:mod:`vidiff.diffusion.guidance`) take a denoiser and return another, so they compose.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import Tensor

from .parameterization import to_x0
from .schedules import NoiseSchedule

__all__ = ["Denoiser", "NetworkDenoiser"]


@runtime_checkable
class Denoiser(Protocol):
    """The one interface between networks and samplers: ``(z, t, **cond) -> x0_hat``.

    ``z``: ``(B, C, F, H, W)`` (or any ``(B, ...)``) noisy sample at time ``t``; ``t``: ``(B,)``
    or per frame ``(B, F)`` in ``[0, 1]``; keyword conditioning (``frame_mask=...``) passes
    through guidance wrappers to the network. Returns the estimate of the clean sample, shaped
    like ``z``. :class:`NetworkDenoiser`, the guidance wrappers and the exact Gaussian-mixture
    denoisers all have this shape, so they compose.
    """

    def __call__(self, z: Tensor, t: Tensor, **cond: Any) -> Tensor:  # pragma: no cover
        ...


class NetworkDenoiser:
    """``x0_hat = to_x0(prediction, net(z, t, **cond), z, alpha_t, sigma_t)``.

    Args:
        net: the network, called as ``net(z, t, **cond)`` with ``t`` of shape ``(B,)`` or ``(B, F)``.
        schedule: gives ``alpha_t``, ``sigma_t``.
        prediction: ``"eps"``, ``"v"`` or ``"x0"``.
        cond: keyword conditioning passed to every call (context, frame mask, ...).
        clip: if set, ``x0_hat`` is clamped to ``[-clip, clip]`` (pixel models: 1.0).
        autocast_dtype: run the network under CPU/GPU autocast with this dtype.
        dtype: the network's weight dtype when it is not float32 (e.g. a pipeline moved to
            bfloat16): ``z`` and floating conditioning are cast to it; ``x0_hat`` is float32.
    """

    def __init__(self, net: Callable[..., Tensor], schedule: NoiseSchedule, prediction: str,
                 clip: float | None = None, autocast_dtype: torch.dtype | None = None,
                 dtype: torch.dtype | None = None, **cond: Any):
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.clip, self.autocast_dtype, self.dtype, self.cond = clip, autocast_dtype, dtype, cond

    def with_cond(self, **cond: Any) -> "NetworkDenoiser":
        """The same denoiser with other conditioning."""
        return NetworkDenoiser(self.net, self.schedule, self.prediction, self.clip,
                               self.autocast_dtype, self.dtype, **cond)

    def __call__(self, z: Tensor, t: Tensor, **extra: Any) -> Tensor:
        alpha, sigma = self.schedule.alpha_sigma(t)
        kwargs = {**self.cond, **extra}
        zin = z
        if self.dtype is not None and self.dtype != z.dtype:
            zin = z.to(self.dtype)
            kwargs = {k: v.to(self.dtype) if isinstance(v, Tensor) and v.is_floating_point()
                      else v for k, v in kwargs.items()}
        if self.autocast_dtype is not None:
            with torch.autocast(z.device.type, dtype=self.autocast_dtype):
                out = self.net(zin, t, **kwargs)
        else:
            out = self.net(zin, t, **kwargs)
        x0 = to_x0(self.prediction, out.float(), z, alpha, sigma)
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
        return x0
