"""Sampler callbacks and per-frame time grids (K+1, F), against exact denoisers."""

import pytest
import torch

from vidiff.diffusion import ScheduleConfig, build_schedule, sample, sampler_options
from vidiff.diffusion.gaussian import GaussianMixture
from vidiff.diffusion.parameterization import expand_like

GMM = GaussianMixture([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]],
                      [[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]]])
MU, SD = 0.5, 0.4  # per-frame data x ~ N(MU, SD^2), independent elements


def gaussian_video_denoiser(schedule):
    """Exact E[x | z_t] for independent N(MU, SD^2) elements, with per-sample (B,) or per-frame
    (B, F) times on videos (B, C, F, H, W)."""
    def den(z, t):
        a, s = (expand_like(c, z) for c in schedule.alpha_sigma(t))
        return MU + a * SD ** 2 * (z - a * MU) / (a ** 2 * SD ** 2 + s ** 2)
    return den


@pytest.mark.parametrize("name", ["ddim", "ancestral"])
def test_callback_records_x0_hat_at_every_step(name):
    """The callback sees, at each step, exactly the denoiser's estimate at the sample it stepped
    from, and the last step returns that estimate."""
    s = build_schedule(ScheduleConfig(kind="cosine"))
    den = GMM.denoiser(s)
    z0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    trace = []
    x = sample(name, den, s, z0.clone(), 6, generator=torch.Generator().manual_seed(1),
               callback=lambda step, t, z, x0_hat: trace.append((step, t, z, x0_hat)))
    assert [r[0] for r in trace] == list(range(6))
    ts = s.timesteps(6)
    prev = z0
    for step, t, z, x0_hat in trace:
        assert torch.equal(t, torch.full((256,), float(ts[step])))
        assert torch.equal(x0_hat, den(prev, t))
        prev = z
    assert torch.equal(trace[-1][2], x) and torch.equal(x, trace[-1][3])


def test_sampler_options_come_from_signatures():
    assert sampler_options("ddim") == {"eta": 0.0}
    assert sampler_options("pc") == {"delta": 0.1, "corrector_steps": 1, "gamma": 0.0}
    assert sampler_options("dpmpp_2m") == {}
    s = build_schedule(ScheduleConfig(kind="cosine"))
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['delta'\]; its options: \['eta'\]"):
        sample("ddim", GMM.denoiser(s), s, torch.randn(2, 2), 2, delta=0.1)
    with pytest.raises(ValueError, match="unknown sampler 'magic'; known: .*'ddim'"):
        sample("magic", GMM.denoiser(s), s, torch.randn(2, 2), 2)


@pytest.mark.parametrize("name", ["ddim", "ancestral", "pc", "dpmpp_2m"])
def test_a_per_frame_grid_with_equal_columns_is_the_plain_grid(name):
    s = build_schedule(ScheduleConfig(kind="cosine_logsnr"))
    den = gaussian_video_denoiser(s)
    z = torch.randn(3, 1, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    ts = s.timesteps(8)
    a = sample(name, den, s, z.clone(), ts=ts, generator=torch.Generator().manual_seed(1))
    b = sample(name, den, s, z.clone(), ts=ts[:, None].expand(-1, 4).contiguous(),
               generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def staggered_grid(steps: int, frames: int, lag: int) -> torch.Tensor:
    """Diffusion-forcing style: frame f starts ``f * lag`` steps late; (K+1, F) from 1 to 0."""
    K = steps + lag * (frames - 1)
    k = torch.arange(K + 1, dtype=torch.float64)[:, None] - lag * torch.arange(frames)[None]
    return (1 - k.clamp(0, steps) / steps).float()


@pytest.mark.parametrize("name", ["ddim", "ancestral", "dpmpp_2m"])
def test_staggered_grid_keeps_waiting_frames_and_follows_each_column(name):
    """A rolling grid: frames waiting at t = 1 or done at t = 0 do not move, and each frame
    ends where the plain grid of its own column takes it (exactly for the deterministic
    samplers, in distribution for the ancestral one)."""
    s = build_schedule(ScheduleConfig(kind="cosine_logsnr"))
    den = gaussian_video_denoiser(s)
    z0 = torch.randn(4000, 1, 3, 1, 1, generator=torch.Generator().manual_seed(0))
    trace = []
    x = sample(name, den, s, z0.clone(), ts=staggered_grid(40, 3, lag=10),
               generator=torch.Generator().manual_seed(1),
               callback=lambda i, t, z, x0: trace.append(z))
    assert len(trace) == 60
    assert torch.equal(trace[19][:, :, 2], z0[:, :, 2])  # frame 2 waits for 20 steps
    assert not torch.equal(trace[20][:, :, 2], z0[:, :, 2])
    assert torch.equal(trace[-1][:, :, 0], trace[39][:, :, 0])  # frame 0 is done at step 40
    plain = sample(name, den, s, z0.clone(), 40, generator=torch.Generator().manual_seed(1))
    if name == "ancestral":
        for stat in (torch.mean, torch.var):
            a, b = (stat(v, dim=(0, 1, 3, 4)) for v in (x, plain))
            assert torch.allclose(a, b, atol=0.02, rtol=0.05), (stat, a, b)
    else:
        assert torch.allclose(x, plain, atol=1e-5), (x - plain).abs().max()
