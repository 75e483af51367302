"""Noise schedules.

Every schedule maps a continuous time ``t`` in ``[0, 1]`` (``t = 0`` is clean data, ``t = 1`` is
pure noise) to the forward-process coefficients ``alpha_t`` and ``sigma_t`` of
``q(z_t | x) = N(alpha_t x, sigma_t^2 I)`` and to the log signal-to-noise ratio
``lambda_t = log(alpha_t^2 / sigma_t^2)``.

``t`` may have any shape: ``(B,)`` for one level per sample or ``(B, F)`` for one level per frame
(joint image-video training, frame conditioning, latent perturbation). Nothing here holds state:
a schedule is a pure function of ``t``.

Discrete (DDPM-style) schedules are defined on ``T`` steps; step ``i`` (0-based) sits at
``t = (i + 1) / T`` and times in between are interpolated linearly in ``alpha_bar``, so discrete
and continuous samplers share one interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..ranges import ranged

__all__ = [
    "NoiseSchedule",
    "DiscreteSchedule",
    "CosineLogSNRSchedule",
    "RectifiedFlowSchedule",
    "shift_time",
    "make_beta_schedule",
    "rescale_zero_terminal_snr",
    "build_schedule",
]


class NoiseSchedule:
    """Base class: subclasses implement :meth:`alpha_bar` (``alpha_t^2``) on ``t`` in ``[0, 1]``."""

    #: number of discrete training steps, or ``None`` for a continuous-time schedule
    num_steps: int | None = None

    def alpha_bar(self, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(alpha_t, sigma_t)``, each of the shape of ``t`` (variance preserving)."""
        ab = self.alpha_bar(t.float()).clamp(0.0, 1.0)
        return ab.sqrt(), (1.0 - ab).sqrt()

    def log_snr(self, t: Tensor) -> Tensor:
        """``lambda_t = log(alpha_t^2 / sigma_t^2)``; ``-inf`` where ``alpha_t = 0``."""
        ab = self.alpha_bar(t.float()).clamp(0.0, 1.0)
        return torch.log(ab) - torch.log1p(-ab)

    def sample_t(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> Tensor:
        """Training times: uniform over the discrete grid, or uniform on ``(0, 1]``."""
        if self.num_steps is not None:
            i = torch.randint(0, self.num_steps, shape, generator=generator, device=device)
            return (i.float() + 1.0) / self.num_steps
        u = torch.rand(shape, generator=generator, device=device)
        return u.clamp_min(1e-5)

    def for_shape(self, shape: tuple[int, ...]) -> "NoiseSchedule":
        """The schedule for samples of ``shape`` (a resolution-aware schedule adapts its time
        shift; the others are the same for every shape)."""
        return self

    def alpha_sigma_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(d alpha / dt, d sigma / dt)`` (central differences; exact where a schedule knows
        them): the probability-flow ODE ``dz/dt = alpha' x0_hat + sigma' eps_hat`` of the ODE
        samplers."""
        h = 1e-3
        lo, hi = (t.float() - h).clamp(0, 1), (t.float() + h).clamp(0, 1)
        (a0, s0), (a1, s1) = self.alpha_sigma(lo), self.alpha_sigma(hi)
        return (a1 - a0) / (hi - lo), (s1 - s0) / (hi - lo)

    def timesteps(self, num_steps: int, device: torch.device | str = "cpu") -> Tensor:
        """A decreasing grid ``t_0 = 1 > t_1 > ... > t_K = 0`` of ``num_steps + 1`` times.

        For a discrete schedule the interior points are the "trailing" sub-sequence of the
        training steps (DDIM), so sampling with ``num_steps = T`` visits every training step.
        """
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if self.num_steps is not None:
            if num_steps > self.num_steps:
                raise ValueError(f"num_steps={num_steps} exceeds the schedule's {self.num_steps} steps")
            idx = torch.round(torch.linspace(self.num_steps, 0, num_steps + 1, dtype=torch.float64))
            return (idx / self.num_steps).to(device=device, dtype=torch.float32)
        return torch.linspace(1.0, 0.0, num_steps + 1, device=device)


def make_beta_schedule(kind: str, num_steps: int = 1000, beta_start: float = 1e-4,
                       beta_end: float = 0.02) -> Tensor:
    """``beta_i`` for ``i < num_steps``: ``linear``, ``scaled_linear`` (Stable Diffusion) or
    ``cosine`` (Nichol & Dhariwal, ``s = 0.008``, betas clipped at 0.999)."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps, dtype=torch.float64) ** 2
    if kind == "cosine":
        s = 0.008
        x = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((x + s) / (1 + s) * math.pi / 2) ** 2
        ab = f / f[0]
        return (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {kind!r}; choose linear, scaled_linear or cosine")


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Rescale betas so the last step has zero SNR (Lin et al. 2023, Algorithm 1).

    ``sqrt(alpha_bar)`` is shifted and scaled so that its last value is 0 while its first is kept.
    """
    ab_sqrt = torch.cumprod(1 - betas.double(), 0).sqrt()
    first, last = ab_sqrt[0].clone(), ab_sqrt[-1].clone()
    ab_sqrt = (ab_sqrt - last) * first / (first - last)
    ab = ab_sqrt ** 2
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])
    return 1 - alphas


class DiscreteSchedule(NoiseSchedule):
    """A schedule given by ``T`` betas; ``alpha_bar`` is interpolated linearly between steps."""

    def __init__(self, betas: Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or (betas < 0).any() or (betas > 1).any():
            raise ValueError("betas must be a 1-D tensor with values in [0, 1]")
        self.betas = betas
        self.num_steps = len(betas)
        ab = torch.cumprod(1 - betas, 0)
        # table[k] = alpha_bar at t = k / T; table[0] = 1 (clean data)
        self.table = torch.cat([torch.ones(1, dtype=torch.float64), ab]).float()

    def alpha_bar(self, t: Tensor) -> Tensor:
        table = self.table.to(t.device)
        pos = (t.float() * self.num_steps).clamp(0, self.num_steps)
        lo = pos.floor().long().clamp(max=self.num_steps - 1)
        frac = pos - lo.float()
        return table[lo] * (1 - frac) + table[lo + 1] * frac


class CosineLogSNRSchedule(NoiseSchedule):
    """Continuous-time cosine schedule of VDM: ``lambda(t) = -2 log tan(a + t (b - a))`` where
    ``a, b`` are chosen so that ``lambda(0) = logsnr_max`` and ``lambda(1) = logsnr_min``."""

    def __init__(self, logsnr_min: float = -20.0, logsnr_max: float = 20.0, shift: float = 1.0):
        if logsnr_min >= logsnr_max:
            raise ValueError("logsnr_min must be < logsnr_max")
        self.logsnr_min, self.logsnr_max = logsnr_min, logsnr_max
        #: resolution shift (Hoogeboom et al.): lambda += 2 log(shift)
        self.shift = shift
        self._a = math.atan(math.exp(-0.5 * logsnr_max))
        self._b = math.atan(math.exp(-0.5 * logsnr_min))

    def log_snr(self, t: Tensor) -> Tensor:
        t = t.float()
        lam = -2.0 * torch.log(torch.tan(self._a + t * (self._b - self._a)))
        return lam + 2.0 * math.log(self.shift)

    def alpha_bar(self, t: Tensor) -> Tensor:
        return torch.sigmoid(self.log_snr(t))

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        lam = self.log_snr(t)
        return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


def shift_time(t: Tensor, shift: float) -> Tensor:
    """The time shift of SD3 / Open-Sora, ``s t / (1 + (s - 1) t)``: ``shift > 1`` spends more
    time at high noise (what larger images and longer clips need); ``t = 0, 1`` stay put."""
    return shift * t / (1 + (shift - 1) * t)


class RectifiedFlowSchedule(NoiseSchedule):
    """Rectified flow (Liu et al. 2023; SD3, Esser et al. 2024): the straight path
    ``z_t = (1 - t) x + t eps`` (``alpha = 1 - t``, ``sigma = t``: not variance preserving), whose
    velocity ``dz/dt = eps - x`` is the ``flow`` prediction target.

    Training times are logit-normal, ``t = sigmoid(m + s n)`` with ``n ~ N(0, 1)`` (SD3), then
    shifted by :func:`shift_time`; the sampling grid is shifted the same way. The shift is
    ``shift * sqrt(n / shift_reference)`` for samples of ``n`` values when ``shift_reference``
    is set (:meth:`for_shape`: resolution- and length-aware, as Open-Sora 1.2), else ``shift``.
    """

    def __init__(self, shift: float = 1.0, logit_mean: float = 0.0, logit_std: float = 1.0,
                 shift_reference: int | None = None):
        if shift <= 0 or logit_std <= 0:
            raise ValueError("shift and logit_std must be > 0")
        self.shift, self.logit_mean, self.logit_std = shift, logit_mean, logit_std
        self.shift_reference = shift_reference

    def for_shape(self, shape: tuple[int, ...]) -> "RectifiedFlowSchedule":
        """This schedule with its shift scaled to samples of ``shape`` (``(B, ...)``)."""
        if self.shift_reference is None:
            return self
        n = math.prod(shape[1:])
        return RectifiedFlowSchedule(self.shift * math.sqrt(n / self.shift_reference),
                                     self.logit_mean, self.logit_std)

    def alpha_bar(self, t: Tensor) -> Tensor:
        return (1 - t.float()) ** 2

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        t = t.float().clamp(0, 1)
        return 1 - t, t

    def alpha_sigma_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        one = torch.ones_like(t, dtype=torch.float32)
        return -one, one

    def log_snr(self, t: Tensor) -> Tensor:
        t = t.float().clamp(0, 1)
        return 2 * (torch.log1p(-t) - torch.log(t))

    def sample_t(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> Tensor:
        n = torch.randn(shape, generator=generator).to(device)
        t = torch.sigmoid(self.logit_mean + self.logit_std * n)
        return shift_time(t, self.shift).clamp(1e-5, 1.0)

    def timesteps(self, num_steps: int, device: torch.device | str = "cpu") -> Tensor:
        """``num_steps + 1`` times from 1 to 0, uniform then shifted."""
        return shift_time(super().timesteps(num_steps, device), self.shift)


@dataclass
class ScheduleConfig:
    """Config of a schedule; ``kind`` is ``linear``, ``scaled_linear``, ``cosine`` (discrete),
    ``cosine_logsnr`` (continuous) or ``rectified_flow`` (continuous, the straight path; use it
    with ``prediction: flow``)."""

    kind: str = "cosine"
    num_steps: int = ranged(1000, ">= 1")
    beta_start: float = ranged(1e-4, "(0, 1)")
    beta_end: float = ranged(0.02, "(0, 1)")
    zero_terminal_snr: bool = False
    logsnr_min: float = ranged(-20.0, lt="logsnr_max")
    logsnr_max: float = ranged(20.0)
    #: cosine_logsnr: the resolution shift of the log-SNR; rectified_flow: the time shift
    shift: float = ranged(1.0, "> 0")
    #: rectified_flow: logit-normal training times, and the sample size (values per sample)
    #: at which the time shift is ``shift`` (None: always ``shift``)
    logit_mean: float = ranged(0.0)
    logit_std: float = ranged(1.0, "> 0")
    shift_reference: int | None = ranged(None, ">= 1")


def build_schedule(cfg: ScheduleConfig) -> NoiseSchedule:
    """Make the schedule a :class:`ScheduleConfig` describes."""
    if cfg.kind == "cosine_logsnr":
        return CosineLogSNRSchedule(cfg.logsnr_min, cfg.logsnr_max, cfg.shift)
    if cfg.kind == "rectified_flow":
        return RectifiedFlowSchedule(cfg.shift, cfg.logit_mean, cfg.logit_std,
                                     cfg.shift_reference)
    betas = make_beta_schedule(cfg.kind, cfg.num_steps, cfg.beta_start, cfg.beta_end)
    if cfg.zero_terminal_snr:
        betas = rescale_zero_terminal_snr(betas)
    return DiscreteSchedule(betas)
