"""ODE samplers in time: Euler and Heun on the probability-flow ODE of any schedule,
``dz/dt = alpha'(t) x0_hat + sigma'(t) eps_hat`` (for rectified flow, ``alpha = 1 - t`` and
``sigma = t``, this is the learned velocity ``eps_hat - x0_hat``; Liu et al. 2023).

Stateless like :mod:`vidiff.diffusion.samplers` (``sample_*(denoiser, schedule, z, ts, ...)``,
``(K+1,)`` or per-frame ``(K+1, F)`` grids, ``callback(step, t, z, x0_hat)``) and usable with
every denoiser. Heun (Karras et al. 2022, Alg. 1 without churn) is second order: two denoiser
calls a step, except the last, which returns ``x0_hat``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..registry import SAMPLERS
from .denoiser import Denoiser
from .parameterization import eps_from_x0, expand_like
from .samplers import Callback, _bt, _done, _keep_still, _report, _steps
from .schedules import NoiseSchedule

__all__ = ["sample_euler", "sample_heun", "ode_velocity"]


def ode_velocity(schedule: NoiseSchedule, z: Tensor, x0: Tensor, t: Tensor) -> Tensor:
    """``dz/dt`` of the probability-flow ODE at ``(z, t)`` given the denoiser's ``x0_hat``."""
    a, s = schedule.alpha_sigma(t)
    da, ds = schedule.alpha_sigma_derivative(t)
    eps = eps_from_x0(z, x0, a, s)
    return expand_like(da, z) * x0 + expand_like(ds, z) * eps


def _dt(tt: Tensor, ss: Tensor, z: Tensor) -> Tensor:
    return expand_like(ss - tt, z)


@torch.no_grad()
def sample_euler(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                 generator: torch.Generator | None = None, progress: bool = False,
                 callback: Callback | None = None) -> Tensor:
    """Euler steps ``z_s = z_t + (s - t) dz/dt`` (the last one returns ``x0_hat``)."""
    del generator  # deterministic
    for i, (t, s) in enumerate(_steps(ts, progress, "euler")):
        tt, ss = _bt(t, z), _bt(s, z)
        x0 = denoiser(z, tt)
        z_s = x0 if _done(s) else z + _dt(tt, ss, z) * ode_velocity(schedule, z, x0, tt)
        z = _keep_still(tt, ss, z, z_s)
        _report(callback, i, tt, z, x0)
    return z


@torch.no_grad()
def sample_heun(denoiser: Denoiser, schedule: NoiseSchedule, z: Tensor, ts: Tensor, *,
                generator: torch.Generator | None = None, progress: bool = False,
                callback: Callback | None = None) -> Tensor:
    """Heun's method: an Euler step to ``s``, then the mean of the velocities at ``t`` and at
    the Euler point (the last step, to ``s = 0``, returns ``x0_hat``)."""
    del generator  # deterministic
    for i, (t, s) in enumerate(_steps(ts, progress, "heun")):
        tt, ss = _bt(t, z), _bt(s, z)
        x0 = denoiser(z, tt)
        if _done(s):
            z_s = x0
        else:
            d = ode_velocity(schedule, z, x0, tt)
            euler = z + _dt(tt, ss, z) * d
            d2 = ode_velocity(schedule, euler, denoiser(euler, ss), ss)
            z_s = z + _dt(tt, ss, z) * 0.5 * (d + d2)
            if ss.ndim == 2:  # frames that reach t = 0 here take x0_hat (no velocity at s = 0)
                z_s = torch.where(expand_like(ss <= 0, z), x0, z_s)
        z = _keep_still(tt, ss, z, z_s)
        _report(callback, i, tt, z, x0)
    return z


SAMPLERS.register("euler")(sample_euler)
SAMPLERS.register("heun")(sample_heun)
