"""Guidance: denoiser wrappers that return denoisers.

* :class:`ClassifierFreeGuidance` - ``x~ = (1 + w) x_c - w x_u`` (identical to the same formula on
  ``eps`` because ``eps`` is affine in ``x0`` at fixed ``z, t``). LVDM's *unconditional guidance*
  is the same wrapper with the frame mask dropped in the unconditional branch.
* :class:`AutoGuidance` - ``x~ = (1 + w) D(z, t) - w D_weak(z, t)`` (Karras et al. 2024,
  "Guiding a diffusion model with a bad version of itself"): an unconditional model guided away
  from a smaller, shorter-trained model of the same data. Where CFG needs a condition, this
  needs only the weak model, and it pushes samples towards what the good model does better.
* :class:`FrameConditioning` - generate frames given others (extension, interpolation,
  image-to-video, super-resolution inputs written as frames). Given frames are marked by a
  per-frame mask and carry their own noise level; two samplers:

  - ``"replacement"``: the given part of ``z_t`` is overwritten with a noised copy of the given
    frames at every step;
  - ``"reconstruction"``: VDM's reconstruction guidance, additionally
    ``x~^b = x^b - (w_r alpha_t / 2) grad_{z^b} ||x^a - x^a_hat(z_t)||^2``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .denoiser import Denoiser
from .masks import noise_given_frames
from .parameterization import expand_like
from .schedules import NoiseSchedule

__all__ = ["AutoGuidance", "ClassifierFreeGuidance", "FrameConditioning", "guide",
           "guidance_interval"]


def guide(x_cond: Tensor, x_uncond: Tensor, w: float) -> Tensor:
    """``(1 + w) x_c - w x_u``: classifier-free and LVDM's unconditional guidance alike."""
    return (1 + w) * x_cond - w * x_uncond


class ClassifierFreeGuidance:
    """``x~ = (1 + w) D(z, t, **cond) - w D(z, t, **uncond)``, both branches in one batch when
    ``batched`` (the conditioning tensors must then have matching shapes)."""

    def __init__(self, denoiser: Denoiser, scale: float, cond: dict[str, Any],
                 uncond: dict[str, Any], batched: bool = True):
        self.denoiser, self.scale, self.cond, self.uncond = denoiser, scale, cond, uncond
        self.batched = batched

    def __call__(self, z: Tensor, t: Tensor, **extra: Any) -> Tensor:
        if self.scale == 0:
            return self.denoiser(z, t, **self.cond, **extra)
        if self.batched and set(self.cond) == set(self.uncond) and all(
                isinstance(v, Tensor) for v in self.cond.values()):
            both = {k: torch.cat([self.cond[k], self.uncond[k]]) for k in self.cond}
            both.update({k: torch.cat([v, v]) if isinstance(v, Tensor) else v
                         for k, v in extra.items()})
            x = self.denoiser(torch.cat([z, z]), torch.cat([t, t]), **both)
            xc, xu = x.chunk(2)
        else:
            xc = self.denoiser(z, t, **self.cond, **extra)
            xu = self.denoiser(z, t, **self.uncond, **extra)
        return guide(xc, xu, self.scale)


def guidance_interval(interval: Any) -> tuple[float, float] | None:
    """``(lo, hi)`` as floats, checked to be ``0 <= lo < hi <= 1``; None stays None."""
    if interval is None:
        return None
    lo, hi = (float(v) for v in interval)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"guidance interval must be 0 <= lo < hi <= 1, got {lo:g} {hi:g}")
    return lo, hi


class AutoGuidance:
    """``x~ = (1 + w) D(z, t) - w D_weak(z, t)``, clamped to ``[-clip, clip]`` when ``clip`` is
    set (both denoisers see the same ``z``, ``t`` and extra conditioning).

    ``interval=(lo, hi)`` guides only at noise levels ``lo < t <= hi`` (per sample, or per frame
    for ``(B, F)`` times) and returns ``D(z, t)`` elsewhere, as in "Applying guidance in a
    limited interval" (Kynkaanniemi et al. 2024); steps entirely outside it skip the weak model.
    """

    def __init__(self, denoiser: Denoiser, weak: Denoiser, scale: float,
                 clip: float | None = None, interval: tuple[float, float] | None = None):
        self.denoiser, self.weak, self.scale, self.clip = denoiser, weak, scale, clip
        self.interval = guidance_interval(interval)

    def __call__(self, z: Tensor, t: Tensor, **extra: Any) -> Tensor:
        x = self.denoiser(z, t, **extra)
        inside = None
        if self.interval is not None:
            inside = (t > self.interval[0]) & (t <= self.interval[1])
            if not bool(inside.any()):
                return x
        if self.scale == 0:
            return x
        g = guide(x, self.weak(z, t, **extra), self.scale)
        g = g if self.clip is None else g.clamp(-self.clip, self.clip)
        return g if inside is None else torch.where(expand_like(inside, g), g, x)


class FrameConditioning:
    """Sample the frames where ``mask`` is False given ``x_given`` where it is True.

    Args:
        denoiser: ``D(z, t, **kw) -> x0_hat`` over the whole clip ``(B, C, F, H, W)``.
        schedule: for ``alpha_t, sigma_t``.
        x_given: ``(B, C, F, H, W)`` clean values of the given frames (others ignored).
        mask: bool ``(B, F)``, True for given frames.
        method: ``"replacement"`` or ``"reconstruction"``.
        weight: ``w_r`` of reconstruction guidance (VDM uses large values, e.g. 2-10).
        cond_t: noise level of the given frames. ``None``: the current ``t`` (VDM, for a model
            trained without frame conditioning); a float ``s``: the given frames are noised to
            ``s`` and the network sees a per-frame ``t`` (models trained with given frames; LVDM's
            conditional latent perturbation is ``s > 0``).
        pass_mask: also call the denoiser with ``frame_mask=mask`` (mask-channel models).
        uncond_weight: LVDM's unconditional guidance ``x~ = (1 + w) x_c - w x_u``, where ``x_u`` is
            the same network with no frame given (all-zero mask, nothing written into ``z``).
        generator: for the noise written into the given frames.
    """

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule, x_given: Tensor,
                 mask: Tensor, method: str = "reconstruction", weight: float = 2.0,
                 cond_t: float | None = None, pass_mask: bool = False,
                 uncond_weight: float = 0.0, generator: torch.Generator | None = None):
        if method not in ("replacement", "reconstruction"):
            raise ValueError(f"unknown frame conditioning method {method!r}; "
                             "choose replacement or reconstruction")
        if x_given.ndim != 5 or mask.shape != (x_given.shape[0], x_given.shape[2]):
            raise ValueError(f"x_given must be (B, C, F, H, W) and mask (B, F); got "
                             f"{tuple(x_given.shape)} and {tuple(mask.shape)}")
        self.denoiser, self.schedule, self.x, self.mask = denoiser, schedule, x_given, mask.bool()
        self.method, self.weight, self.cond_t = method, weight, cond_t
        self.pass_mask, self.generator = pass_mask, generator
        self.uncond_weight = uncond_weight
        self._m = self.mask[:, None, :, None, None].to(x_given.dtype)

    def _noised_given(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(``z^a`` at the given frames' level, per-frame time for the network)."""
        level = t if self.cond_t is None else torch.full_like(t, float(self.cond_t))
        a, s = self.schedule.alpha_sigma(level)
        noise = torch.randn(self.x.shape, generator=self.generator, device=self.x.device,
                            dtype=self.x.dtype)
        za = expand_like(a, self.x) * self.x + expand_like(s, self.x) * noise
        t_net = t if self.cond_t is None else noise_given_frames(t, self.mask, float(self.cond_t))
        return za, t_net

    def __call__(self, z: Tensor, t: Tensor, **extra: Any) -> Tensor:
        za, t_net = self._noised_given(t)
        kw = dict(extra)
        if self.pass_mask:
            kw["frame_mask"] = self.mask
        m = self._m
        if self.method == "replacement":
            x0 = self.denoiser(z * (1 - m) + za * m, t_net, **kw)
        else:
            with torch.enable_grad():
                zb = z.detach().requires_grad_(True)
                x0 = self.denoiser(zb * (1 - m) + za * m, t_net, **kw)
                err = (((self.x - x0) * m) ** 2).sum()
                (grad,) = torch.autograd.grad(err, zb)
            alpha, _ = self.schedule.alpha_sigma(t)
            x0 = x0.detach() - (self.weight * expand_like(alpha, z) / 2) * grad * (1 - m)
        if self.uncond_weight:
            ukw = dict(extra)
            if self.pass_mask:
                ukw["frame_mask"] = torch.zeros_like(self.mask)
            xu = self.denoiser(z, t, **ukw)
            x0 = guide(x0, xu, self.uncond_weight)
        # keep the given frames exact in the estimate so the sampler converges onto them
        return x0 * (1 - m) + self.x * m
