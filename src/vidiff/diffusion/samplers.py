"""Stateless samplers in the style of k-diffusion: ``sample_*(denoiser, schedule, z, ts, ...)``.

``denoiser(z, t) -> x0_hat`` (see :mod:`vidiff.diffusion.denoiser`), ``z`` starts as Gaussian noise
at ``ts[0]`` and ``ts`` is a decreasing time grid ending at 0 (``schedule.timesteps(K)``). Every
sampler returns the final sample; no sampler keeps state between calls.

All of them step from ``t`` to ``s < t`` using the Gaussian posterior ``q(z_s | z_t, x)`` with
``x = x0_hat``. In terms of ``r = exp(lambda_t - lambda_s) = alpha_t^2 sigma_s^2 / (sigma_t^2 alpha_s^2)``:

* mean ``r (alpha_s / alpha_t) z_t + (1 - r) alpha_s x0_hat``, variance ``(1 - r) sigma_s^2``
  (written without dividing by ``alpha_t`` so a zero-terminal-SNR start is fine).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .parameterization import eps_from_x0, expand_like
from .schedules import NoiseSchedule

__all__ = ["SAMPLERS", "sample", "sample_ddpm", "sample_ancestral", "sample_ddim",
           "sample_pc", "sample_dpmpp_2m", "posterior"]

Denoiser = Callable[[Tensor, Tensor], Tensor]


def _bt(t: float | Tensor, z: Tensor) -> Tensor:
    """A scalar time as a ``(B,)`` tensor."""
    return torch.full((z.shape[0],), float(t), device=z.device, dtype=torch.float32)


def posterior(schedule: NoiseSchedule, z: Tensor, x0: Tensor, t: Tensor, s: Tensor
              ) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and variance of ``q(z_s | z_t, x0)`` and the forward variance ``sigma^2_{t|s}``.

    Returns ``(mean, var_posterior, var_forward)``; the variances are broadcast to ``z``.
    """
    a_t, s_t = schedule.alpha_sigma(t)
    a_s, s_s = schedule.alpha_sigma(s)
    a_t, s_t, a_s, s_s = (expand_like(c, z) for c in (a_t, s_t, a_s, s_s))
    r = (a_t ** 2 * s_s ** 2) / (s_t ** 2 * a_s ** 2).clamp_min(1e-20)
    c_z = a_t * s_s ** 2 / (s_t ** 2 * a_s).clamp_min(1e-20)  # = r alpha_s / alpha_t
    mean = c_z * z + (1 - r) * a_s * x0
    var_post = ((1 - r) * s_s ** 2).clamp_min(0)
    a_ts = a_t / a_s.clamp_min(1e-20)
    var_fwd = (s_t ** 2 - a_ts ** 2 * s_s ** 2).clamp_min(0)
    return mean, var_post, var_fwd


def _noise(z: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)


def _steps(ts: Tensor, progress: bool, desc: str):
    pairs = list(zip(ts[:-1].tolist(), ts[1:].tolist()))
    return tqdm(pairs, desc=desc, disable=not progress, leave=False)


def _ancestral_step(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, tt: Tensor,
                    ss: Tensor, gamma: float, generator: torch.Generator | None) -> Tensor:
    """One step ``t -> s`` with variance ``(var_post)^(1 - gamma) (var_fwd)^gamma``; the step to
    ``s = 0`` returns the posterior mean (``x0_hat``)."""
    mean, var_post, var_fwd = posterior(schedule, z, denoiser(z, tt), tt, ss)
    if float(ss[0]) <= 0:
        return mean
    var = var_post.clamp_min(1e-20) ** (1 - gamma) * var_fwd.clamp_min(1e-20) ** gamma
    return mean + var.sqrt() * _noise(z, generator)


@torch.no_grad()
def sample_ancestral(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                     gamma: float = 0.0, generator: torch.Generator | None = None,
                     progress: bool = False) -> Tensor:
    """VDM's ancestral sampler: variance ``(var_post)^(1 - gamma) (var_fwd)^gamma``.

    ``gamma = 0`` is the posterior variance (DDPM's ``beta_tilde``), ``gamma = 1`` the forward one.
    """
    for t, s in _steps(ts, progress, "ancestral"):
        z = _ancestral_step(denoiser, schedule, z, _bt(t, z), _bt(s, z), gamma, generator)
    return z


def sample_ddpm(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor | None = None,
                **kw) -> Tensor:
    """DDPM ancestral sampling (Ho et al. 2020): every training step, posterior variance.

    ``ts`` defaults to the full grid of a discrete schedule (1,000 steps for continuous ones).
    """
    if ts is None:
        ts = schedule.timesteps(schedule.num_steps or 1000, device=z.device)
    kw.setdefault("gamma", 0.0)
    return sample_ancestral(denoiser, schedule, z, ts, **kw)


@torch.no_grad()
def sample_ddim(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                eta: float = 0.0, generator: torch.Generator | None = None,
                progress: bool = False) -> Tensor:
    """DDIM (Song et al. 2021) over the grid ``ts``; ``eta = 0`` is deterministic, ``eta = 1``
    matches the ancestral sampler's posterior variance."""
    for t, s in _steps(ts, progress, "ddim"):
        tt, ss = _bt(t, z), _bt(s, z)
        x0 = denoiser(z, tt)
        a_t, s_t = schedule.alpha_sigma(tt)
        eps = eps_from_x0(z, x0, a_t, s_t)
        if s <= 0:
            z = x0
            continue
        _, var_post, _ = posterior(schedule, z, x0, tt, ss)
        a_s, s_s = (expand_like(c, z) for c in schedule.alpha_sigma(ss))
        c2 = (eta ** 2) * var_post
        z = a_s * x0 + (s_s ** 2 - c2).clamp_min(0).sqrt() * eps
        if eta > 0:
            z = z + c2.sqrt() * _noise(z, generator)
    return z


@torch.no_grad()
def sample_pc(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
              delta: float = 0.1, corrector_steps: int = 1, gamma: float = 0.0,
              generator: torch.Generator | None = None, progress: bool = False) -> Tensor:
    """VDM's predictor-corrector sampler: an ancestral step, then ``corrector_steps`` Langevin
    corrections ``z_s <- z_s - 1/2 delta sigma_s eps_hat(z_s) + sqrt(delta) sigma_s eps'``."""
    for t, s in _steps(ts, progress, "pc"):
        ss = _bt(s, z)
        z = _ancestral_step(denoiser, schedule, z, _bt(t, z), ss, gamma, generator)
        if s <= 0:
            continue
        a_s, s_s = schedule.alpha_sigma(ss)
        for _ in range(corrector_steps):
            eps = eps_from_x0(z, denoiser(z, ss), a_s, s_s)
            sig = expand_like(s_s, z)
            z = z - 0.5 * delta * sig * eps + math.sqrt(delta) * sig * _noise(z, generator)
    return z


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                    generator: torch.Generator | None = None, progress: bool = False) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), a second-order multistep ODE solver in ``lambda``; the
    first and last steps are first order (the last one returns ``x0_hat``)."""
    del generator  # deterministic
    x0_prev, h_prev = None, None
    for t, s in _steps(ts, progress, "dpm++2m"):
        tt, ss = _bt(t, z), _bt(s, z)
        x0 = denoiser(z, tt)
        if s <= 0:
            z = x0
            continue
        lam_t, lam_s = schedule.log_snr(tt)[0].item() / 2, schedule.log_snr(ss)[0].item() / 2
        h = lam_s - lam_t  # log(alpha/sigma) increases as t decreases
        a_s, s_s = (expand_like(c, z) for c in schedule.alpha_sigma(ss))
        _, s_t = schedule.alpha_sigma(tt)
        s_t = expand_like(s_t, z)
        if x0_prev is None or not math.isfinite(h) or not math.isfinite(h_prev):
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        z = (s_s / s_t) * z - a_s * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return z


SAMPLERS = {
    "ddpm": sample_ddpm,
    "ancestral": sample_ancestral,
    "ddim": sample_ddim,
    "pc": sample_pc,
    "dpmpp_2m": sample_dpmpp_2m,
}


def sample(name: str, denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, steps: int,
           **kw) -> Tensor:
    """Run sampler ``name`` for ``steps`` steps from noise ``z`` (``ddpm`` ignores ``steps`` when
    the schedule is discrete and uses all its steps)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    if name == "ddpm":
        return sample_ddpm(denoiser, schedule, z, None, **kw)
    return SAMPLERS[name](denoiser, schedule, z, schedule.timesteps(steps, device=z.device), **kw)
