"""Stateless samplers in the style of k-diffusion: ``sample_*(denoiser, schedule, z, ts, ...)``.

``denoiser(z, t) -> x0_hat`` (see :mod:`vidiff.diffusion.denoiser`), ``z`` starts as Gaussian noise
at ``ts[0]`` and ``ts`` is a decreasing time grid ending at 0 (``schedule.timesteps(K)``). Every
sampler returns the final sample; no sampler keeps state between calls.

``ts`` is ``(K + 1,)`` (one time for the whole clip) or ``(K + 1, F)`` (a time per frame and
step: frames that wait at ``t = 1`` or are done at ``t = 0`` while others move give rolling,
diffusion-forcing style schedules as a grid, with no new sampler code). Every sampler takes
``callback(step, t, z, x0_hat)``, called after each step with the step index, the time the
denoiser saw (``(B,)`` or ``(B, F)``), the new sample and the denoiser's estimate, so a trace
is one line of user code. Options (``eta``, ``gamma``, ...) are keyword-only arguments; the
pipelines read them from the signature (:func:`sampler_options`), and a sampler declares their
allowed ranges in its ``option_ranges`` attribute (:mod:`vidiff.ranges` strings, checked by
:func:`check_sampler_options` before sampling starts).

All of them step from ``t`` to ``s < t`` using the Gaussian posterior ``q(z_s | z_t, x)`` with
``x = x0_hat``. In terms of ``r = exp(lambda_t - lambda_s) = alpha_t^2 sigma_s^2 / (sigma_t^2 alpha_s^2)``:

* mean ``r (alpha_s / alpha_t) z_t + (1 - r) alpha_s x0_hat``, variance ``(1 - r) sigma_s^2``
  (written without dividing by ``alpha_t`` so a zero-terminal-SNR start is fine).
"""

from __future__ import annotations

import inspect
import math
from numbers import Integral, Real
from typing import Any, Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..ranges import check_range
from ..registry import SAMPLERS
from .denoiser import Denoiser
from .parameterization import eps_from_x0, expand_like
from .schedules import NoiseSchedule

__all__ = ["SAMPLERS", "sample", "sample_ddpm", "sample_ancestral", "sample_ddim",
           "sample_pc", "sample_dpmpp_2m", "posterior", "sampler_options", "check_sampler_options", "Callback"]

#: ``callback(step, t, z, x0_hat)``
Callback = Callable[[int, Tensor, Tensor, Tensor], None]

#: keyword arguments every sampler takes that are not sampler options
COMMON_ARGS = ("generator", "progress", "callback")


def _bt(t: float | list[float], z: Tensor) -> Tensor:
    """A grid row as the denoiser's time: a scalar -> ``(B,)``; a per-frame row -> ``(B, F)``."""
    if isinstance(t, list):
        return torch.tensor(t, device=z.device, dtype=torch.float32).expand(z.shape[0], -1)
    return torch.full((z.shape[0],), float(t), device=z.device, dtype=torch.float32)


def _done(s: float | list[float]) -> bool:
    """Whether every frame reaches ``t = 0`` at this step (the step returns ``x0_hat``)."""
    return max(s) <= 0 if isinstance(s, list) else s <= 0


def _moving(tt: Tensor, ss: Tensor, z: Tensor) -> Tensor | float:
    """Per-frame grids: 1 where a frame moves in this step and still has noise to draw after it
    (``0 < s < t``), else 0; 1 for a plain grid."""
    return expand_like(((ss > 0) & (ss < tt)).to(z.dtype), z) if ss.ndim == 2 else 1.0


def _keep_still(tt: Tensor, ss: Tensor, z: Tensor, z_s: Tensor) -> Tensor:
    """Per-frame grids: frames whose time does not change in this step keep ``z`` exactly."""
    return z_s if ss.ndim == 1 else torch.where(expand_like(ss == tt, z), z, z_s)


def posterior(schedule: NoiseSchedule, z: Tensor, x0: Tensor, t: Tensor, s: Tensor
              ) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and variance of ``q(z_s | z_t, x0)`` and the forward variance ``sigma^2_{t|s}``.

    Returns ``(mean, var_posterior, var_forward)``; the variances are broadcast to ``z``.
    A frame with ``s = t`` stays where it is (mean ``z``, variance 0).
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
    if ts.ndim not in (1, 2) or ts.shape[0] < 2:
        raise ValueError(f"a time grid is (K+1,) or (K+1, F) with K >= 1, got {tuple(ts.shape)}")
    pairs = list(zip(ts[:-1].tolist(), ts[1:].tolist()))
    return tqdm(pairs, desc=desc, disable=not progress, leave=False)


def _ancestral_step(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, tt: Tensor,
                    ss: Tensor, gamma: float, generator: torch.Generator | None
                    ) -> tuple[Tensor, Tensor]:
    """One step ``t -> s`` with variance ``(var_post)^(1 - gamma) (var_fwd)^gamma``; the step to
    ``s = 0`` returns the posterior mean (``x0_hat``). Returns ``(z_s, x0_hat)``."""
    x0 = denoiser(z, tt)
    mean, var_post, var_fwd = posterior(schedule, z, x0, tt, ss)
    if ss.ndim == 1 and float(ss[0]) <= 0:
        return mean, x0
    var = var_post.clamp_min(1e-20) ** (1 - gamma) * var_fwd.clamp_min(1e-20) ** gamma
    z_s = mean + _moving(tt, ss, z) * var.sqrt() * _noise(z, generator)
    return _keep_still(tt, ss, z, z_s), x0


def _report(callback: Callback | None, i: int, tt: Tensor, z: Tensor, x0: Tensor) -> None:
    if callback is not None:
        callback(i, tt, z, x0)


@torch.no_grad()
def sample_ancestral(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                     gamma: float = 0.0, generator: torch.Generator | None = None,
                     progress: bool = False, callback: Callback | None = None) -> Tensor:
    """VDM's ancestral sampler: variance ``(var_post)^(1 - gamma) (var_fwd)^gamma``.

    ``gamma = 0`` is the posterior variance (DDPM's ``beta_tilde``), ``gamma = 1`` the forward one.
    """
    for i, (t, s) in enumerate(_steps(ts, progress, "ancestral")):
        tt = _bt(t, z)
        z, x0 = _ancestral_step(denoiser, schedule, z, tt, _bt(s, z), gamma, generator)
        _report(callback, i, tt, z, x0)
    return z


sample_ancestral.option_ranges = {"gamma": "[0, 1]"}  # type: ignore[attr-defined]


@torch.no_grad()
def sample_ddpm(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor | None = None,
                *, gamma: float = 0.0, generator: torch.Generator | None = None,
                progress: bool = False, callback: Callback | None = None) -> Tensor:
    """DDPM ancestral sampling (Ho et al. 2020): every training step, posterior variance.

    ``ts`` defaults to the full grid of a discrete schedule (1,000 steps for continuous ones).
    """
    if ts is None:
        ts = schedule.timesteps(schedule.num_steps or 1000, device=z.device)
    return sample_ancestral(denoiser, schedule, z, ts, gamma=gamma, generator=generator,
                            progress=progress, callback=callback)


#: ``sample(...)`` runs DDPM on the schedule's own training grid, whatever ``steps`` says
sample_ddpm.uses_training_grid = True  # type: ignore[attr-defined]
sample_ddpm.option_ranges = sample_ancestral.option_ranges  # type: ignore[attr-defined]


@torch.no_grad()
def sample_ddim(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                eta: float = 0.0, generator: torch.Generator | None = None,
                progress: bool = False, callback: Callback | None = None) -> Tensor:
    """DDIM (Song et al. 2021) over the grid ``ts``; ``eta = 0`` is deterministic, ``eta = 1``
    matches the ancestral sampler's posterior variance."""
    for i, (t, s) in enumerate(_steps(ts, progress, "ddim")):
        tt, ss = _bt(t, z), _bt(s, z)
        x0 = denoiser(z, tt)
        a_t, s_t = schedule.alpha_sigma(tt)
        eps = eps_from_x0(z, x0, a_t, s_t)
        if _done(s):
            z = _keep_still(tt, ss, z, x0)
            _report(callback, i, tt, z, x0)
            continue
        _, var_post, _ = posterior(schedule, z, x0, tt, ss)
        a_s, s_s = (expand_like(c, z) for c in schedule.alpha_sigma(ss))
        c2 = (eta ** 2) * var_post
        z_s = a_s * x0 + (s_s ** 2 - c2).clamp_min(0).sqrt() * eps
        if eta > 0:
            z_s = z_s + c2.sqrt() * _noise(z, generator)
        z = _keep_still(tt, ss, z, z_s)
        _report(callback, i, tt, z, x0)
    return z


#: eta < 0 would skip the noise term (neither DDIM nor DDPM); eta > 1 exceeds the posterior
sample_ddim.option_ranges = {"eta": "[0, 1]"}  # type: ignore[attr-defined]


@torch.no_grad()
def sample_pc(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
              delta: float = 0.1, corrector_steps: int = 1, gamma: float = 0.0,
              generator: torch.Generator | None = None, progress: bool = False,
              callback: Callback | None = None) -> Tensor:
    """VDM's predictor-corrector sampler: an ancestral step, then ``corrector_steps`` Langevin
    corrections ``z_s <- z_s - 1/2 delta sigma_s eps_hat(z_s) + sqrt(delta) sigma_s eps'``
    (on frames with ``s > 0``). The callback sees the predictor's ``x0_hat``."""
    for i, (t, s) in enumerate(_steps(ts, progress, "pc")):
        tt, ss = _bt(t, z), _bt(s, z)
        z, x0 = _ancestral_step(denoiser, schedule, z, tt, ss, gamma, generator)
        if not _done(s):
            a_s, s_s = schedule.alpha_sigma(ss)
            sig = expand_like(s_s, z) * _moving(tt, ss, z)
            for _ in range(corrector_steps):
                eps = eps_from_x0(z, denoiser(z, ss), a_s, s_s)
                z = z - 0.5 * delta * sig * eps + math.sqrt(delta) * sig * _noise(z, generator)
        _report(callback, i, tt, z, x0)
    return z


sample_pc.option_ranges = {"delta": "> 0", "corrector_steps": ">= 0",  # type: ignore
                           "gamma": "[0, 1]"}


def _half_log_snr(schedule: NoiseSchedule, t: Tensor) -> Tensor:
    """``lambda / 2 = log(alpha / sigma)`` of one grid row (``(B,)`` or ``(B, F)``; first row)."""
    return schedule.log_snr(t)[0] / 2


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                    generator: torch.Generator | None = None, progress: bool = False,
                    callback: Callback | None = None) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), a second-order multistep ODE solver in ``lambda``; the
    first and last steps are first order (the last one returns ``x0_hat``). On a per-frame grid
    a frame whose time does not change in a step stays put, and its next step is first order."""
    del generator  # deterministic
    x0_prev, h_prev = None, None
    for i, (t, s) in enumerate(_steps(ts, progress, "dpm++2m")):
        tt, ss = _bt(t, z), _bt(s, z)
        x0 = denoiser(z, tt)
        if _done(s):
            z = _keep_still(tt, ss, z, x0)
        elif ss.ndim == 1:
            lam_t, lam_s = _half_log_snr(schedule, tt).item(), _half_log_snr(schedule, ss).item()
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
        else:
            z, h = _dpmpp_2m_frames(schedule, z, x0, x0_prev, h_prev, tt, ss)
        x0_prev, h_prev = x0, (h if not _done(s) else None)
        _report(callback, i, tt, z, x0)
    return z


def _dpmpp_2m_frames(schedule: NoiseSchedule, z: Tensor, x0: Tensor, x0_prev: Tensor | None,
                     h_prev: Tensor | None, tt: Tensor, ss: Tensor) -> tuple[Tensor, Tensor]:
    """One DPM-Solver++(2M) step with a step size ``h`` per frame (``(F,)``)."""
    h = _half_log_snr(schedule, ss) - _half_log_snr(schedule, tt)
    h = torch.where(ss[0] == tt[0], torch.zeros_like(h), h)  # frames that do not move
    a_s, s_s = schedule.alpha_sigma(ss)
    _, s_t = schedule.alpha_sigma(tt)
    d = x0
    if x0_prev is not None:
        ok = torch.isfinite(h) & torch.isfinite(h_prev) & (h != 0) & (h_prev != 0)
        r = torch.where(ok, h_prev, torch.ones_like(h)) / torch.where(ok, h, torch.ones_like(h))
        c = expand_like((1 / (2 * r))[None].expand_as(ss), z)
        second = (1 + c) * x0 - c * x0_prev
        d = torch.where(expand_like(ok[None].expand_as(ss), z), second, x0)
    hz = expand_like(h[None].expand_as(ss), z)
    ratio = expand_like(s_s, z) / expand_like(s_t, z).clamp_min(1e-20)
    z_s = ratio * z - expand_like(a_s, z) * torch.expm1(-hz) * d
    z_s = torch.where(expand_like(ss <= 0, z), x0, z_s)
    return _keep_still(tt, ss, z, z_s), h


for _name, _fn in (("ddpm", sample_ddpm), ("ancestral", sample_ancestral), ("ddim", sample_ddim),
                   ("pc", sample_pc), ("dpmpp_2m", sample_dpmpp_2m)):
    SAMPLERS.register(_name)(_fn)


def sampler_options(name: str) -> dict[str, Any]:
    """The options sampler ``name`` takes, read from its signature, with their defaults."""
    sig = inspect.signature(SAMPLERS.get(name))
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in COMMON_ARGS}


def check_sampler_options(name: str, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line) when sampler ``name`` does not exist, does not take
    every key of ``options`` (naming the valid ones), or a value is not of its option's type
    or out of its declared range (``option_ranges``; naming option, value and range)."""
    valid = sampler_options(name)
    bad = set(options) - set(valid)
    if bad:
        raise ValueError(f"sampler {name!r} takes no option(s) {sorted(bad)}; its options: "
                         f"{sorted(valid)}")
    ranges = getattr(SAMPLERS.get(name), "option_ranges", {})
    for key, value in options.items():
        _check_option(f"sampler {name!r} option {key}", value, valid[key], ranges.get(key))


def _check_option(what: str, value: Any, default: Any, spec: str | None) -> None:
    """A one-line ``ValueError`` unless ``value`` has the type of the option's ``default``
    (a bool, an integer or a number) and lies in its declared range ``spec``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{what} must be true or false, got {value!r}")
        return
    if isinstance(default, (int, float)):
        integer = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
            raise ValueError(f"{what} must be {'an integer' if integer else 'a number'}, got "
                             f"{value!r}")
        check_range(what, value, spec)


def sample(name: str, denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor,
           steps: int | None = None, *, ts: Tensor | None = None, **kw: Any) -> Tensor:
    """Run sampler ``name`` from noise ``z``: over ``schedule.timesteps(steps)``, or over the
    grid ``ts`` (``(K+1,)`` or per frame ``(K+1, F)``) when given (``ddpm`` always uses every
    training step of a discrete schedule). Options are checked against the sampler's signature.
    """
    fn = SAMPLERS.get(name)
    check_sampler_options(name, {k: v for k, v in kw.items() if k not in COMMON_ARGS})
    if getattr(fn, "uses_training_grid", False):
        if ts is not None:
            raise ValueError(f"sampler {name!r} runs every training step of the schedule; it "
                             "takes no time grid ts")
        return fn(denoiser, schedule, z, None, **kw)
    if ts is None:
        if steps is None:
            raise ValueError("sample() needs steps or a time grid ts")
        ts = schedule.timesteps(steps, device=z.device)
    return fn(denoiser, schedule, z, ts.to(z.device), **kw)
