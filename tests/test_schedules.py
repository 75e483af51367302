import math

import pytest
import torch

from vidiff.diffusion import (CosineLogSNRSchedule, DiscreteSchedule, ScheduleConfig,
                              build_schedule, make_beta_schedule, rescale_zero_terminal_snr)


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "cosine", "cosine_logsnr"])
def test_variance_preserving_and_monotone(kind):
    s = build_schedule(ScheduleConfig(kind=kind))
    t = torch.linspace(0, 1, 101)
    a, sig = s.alpha_sigma(t)
    assert torch.allclose(a ** 2 + sig ** 2, torch.ones_like(a), atol=1e-6)
    lam = s.log_snr(t[1:-1])
    assert (lam[1:] < lam[:-1]).all()


def test_discrete_grid_matches_cumprod():
    betas = make_beta_schedule("linear", 1000)
    s = DiscreteSchedule(betas)
    ab = torch.cumprod(1 - betas, 0)
    i = torch.tensor([0, 10, 500, 999])
    got = s.alpha_bar((i + 1).float() / 1000)
    assert torch.allclose(got.double(), ab[i], rtol=1e-5)
    assert s.alpha_bar(torch.tensor([0.0])).item() == 1.0


def test_linear_beta_endpoints():
    b = make_beta_schedule("linear", 1000, 1e-4, 0.02)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)


def test_zero_terminal_snr():
    betas = make_beta_schedule("scaled_linear", 1000, 0.00085, 0.012)
    z = rescale_zero_terminal_snr(betas)
    s0, s1 = DiscreteSchedule(betas), DiscreteSchedule(z)
    assert s1.alpha_bar(torch.tensor([1.0])).item() == pytest.approx(0.0, abs=1e-12)
    assert s1.log_snr(torch.tensor([1.0])).item() == -math.inf
    # the first step is kept
    t = torch.tensor([1e-3])
    assert s1.alpha_bar(t).item() == pytest.approx(s0.alpha_bar(t).item(), rel=1e-6)


def test_cosine_logsnr_endpoints_and_per_frame_shapes():
    s = CosineLogSNRSchedule(-20, 20)
    assert s.log_snr(torch.tensor([0.0])).item() == pytest.approx(20, abs=1e-2)
    assert s.log_snr(torch.tensor([1.0])).item() == pytest.approx(-20, abs=1e-2)
    # (B, F) in, (B, F) out
    t = torch.rand(3, 5)
    a, sig = s.alpha_sigma(t)
    assert a.shape == (3, 5) and sig.shape == (3, 5)
    # VDM's cosine: alpha = cos(pi t / 2) up to the clipping at the ends
    assert torch.allclose(s.alpha_sigma(torch.tensor([0.5]))[0], torch.tensor([math.cos(math.pi / 4)]), atol=1e-3)


def test_timesteps_grid():
    s = build_schedule(ScheduleConfig(kind="cosine"))
    ts = s.timesteps(50)
    assert ts[0] == 1 and ts[-1] == 0 and len(ts) == 51 and (ts[1:] < ts[:-1]).all()
    assert torch.allclose(s.timesteps(1000)[:-1] * 1000, torch.arange(1000, 0, -1).float())
    with pytest.raises(ValueError):
        s.timesteps(2000)
