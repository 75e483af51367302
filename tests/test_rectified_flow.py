"""Rectified flow in the diffusion core: the straight path, the flow (velocity) target, the
logit-normal times and their shift, Euler as DDIM on the straight path, and a denoiser trained
with it end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from vidiff.config import ConfigError, load_config
from vidiff.diffusion import (ScheduleConfig, build_schedule, diffusion_loss, sample, shift_time,
                              target_of, to_eps, to_x0)
from vidiff.diffusion.gaussian import GaussianMixture
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
RF = ScheduleConfig(kind="rectified_flow")


def test_straight_path_and_flow_target():
    s = build_schedule(RF)
    t = torch.tensor([0.0, 0.25, 1.0])
    a, sig = s.alpha_sigma(t)
    assert torch.equal(a, 1 - t) and torch.equal(sig, t)
    x, e = torch.randn(3, 4), torch.randn(3, 4)
    z = a[:, None] * x + sig[:, None] * e
    u = target_of("flow", x, e, a, sig)
    assert torch.allclose(u, e - x)
    assert torch.allclose(to_x0("flow", u, z, a, sig), x, atol=1e-6)
    assert torch.allclose(to_eps("flow", u, z, a, sig), e, atol=1e-6)
    da, ds = s.alpha_sigma_derivative(t)
    assert torch.equal(da, -torch.ones(3)) and torch.equal(ds, torch.ones(3))


def test_time_shift_and_logit_normal_times():
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(shift_time(t, 3.0), torch.tensor([0.0, 0.75, 1.0]))
    s = build_schedule(ScheduleConfig(kind="rectified_flow", logit_mean=0.5, logit_std=0.8))
    n = torch.randn(100000, generator=torch.Generator().manual_seed(0))
    got = s.sample_t((100000,), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(got, torch.sigmoid(0.5 + 0.8 * n).clamp(1e-5, 1))
    # resolution / length aware: the shift grows with the square root of the sample size
    s = build_schedule(ScheduleConfig(kind="rectified_flow", shift=1.0, shift_reference=1024))
    assert s.for_shape((2, 4, 4, 16, 16)).shift == pytest.approx(2.0)
    big = s.for_shape((1, 4, 16, 32, 32)).timesteps(4)
    assert torch.allclose(big, shift_time(torch.linspace(1, 0, 5), 8.0))
    assert big[0] == 1 and big[-1] == 0


def test_euler_is_ddim_on_the_straight_path():
    s = build_schedule(RF)
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [[[0.2, 0], [0, 0.2]]] * 2)
    z = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    a = sample("euler", gm.denoiser(s), s, z, 7)
    b = sample("ddim", gm.denoiser(s), s, z, 7)
    assert torch.allclose(a, b, atol=1e-5)


def test_flow_min_snr_weight_is_the_x0_weight():
    # the flow error is the x0 error over t: the weight must give min(SNR, gamma) in x0 space
    from vidiff.diffusion import loss_weight

    t = torch.tensor([0.1, 0.5, 0.9])
    s = build_schedule(RF)
    w = loss_weight("min_snr", "flow", s.log_snr(t), gamma=5.0)
    snr = ((1 - t) / t) ** 2
    assert torch.allclose(w * (1 / t) ** 2, snr.clamp(max=5.0), rtol=1e-5)


def test_a_unet_trains_and_samples_with_rectified_flow(tmp_path):
    from vidiff.pipelines import VideoDiffusionPipeline

    cfg = load_config(ROOT / "configs" / "vdm_tiny.yaml", [
        f"train.out_dir={tmp_path}", "train.steps=3", "train.batch_size=2",
        "train.progress=false", "train.tensorboard=false", "train.log_every=1",
        "data.moving_shapes.size=16", "data.moving_shapes.num_frames=4",
        "model.model_channels=8", "model.channel_mult=[1, 2]", "model.attention_levels=[1]",
        "model.temporal_attention_levels=[1]", "model.head_channels=8",
        "diffusion.schedule.kind=rectified_flow", "diffusion.prediction=flow",
        "diffusion.weighting=uniform", "diffusion.clip=null", "sample.sampler=heun",
        "sample.steps=4", "sample.num_frames=4"])
    Trainer(cfg).fit()
    pipe = VideoDiffusionPipeline.from_pretrained(tmp_path)
    for sampler in ("heun", "euler", "ddim", "dpmpp_2m"):
        out = pipe(num_videos=2, sampler=sampler, generator=torch.Generator().manual_seed(0))
        assert out.shape == (2, 4, 16, 16, 3)
    with pytest.raises(ConfigError, match="prediction flow needs schedule.kind rectified_flow"):
        load_config(ROOT / "configs" / "vdm_tiny.yaml", ["diffusion.prediction=flow"])


def test_flow_loss_is_the_velocity_regression():
    s = build_schedule(RF)
    x0 = torch.randn(4, 3, 2, 4, 4)
    noise, t = torch.randn_like(x0), torch.tensor([0.2, 0.4, 0.6, 0.8])
    net = lambda z, tt: torch.zeros_like(z)  # noqa: E731
    loss = diffusion_loss(net, s, x0, prediction="flow", t=t, noise=noise)
    assert loss.item() == pytest.approx(((noise - x0) ** 2).mean().item(), rel=1e-6)
    assert math.isfinite(loss.item())


def test_ode_samplers_on_a_per_frame_grid_finish_frames_at_zero():
    # frame 0 reaches t = 0 two steps before the others: no velocity is taken at s = 0
    s = build_schedule(RF)
    gm = GaussianMixture([1.0], [[0.5, -0.5]], [[[0.3, 0.0], [0.0, 0.3]]])

    def den(z, t):  # (B, C, F, 1, 1) video of 2-D points per frame
        tt = t.reshape(-1) if t.ndim == 1 else t.reshape(-1)
        x = gm.denoiser(s)(z.permute(0, 2, 1, 3, 4).reshape(-1, 2), tt)
        return x.reshape(z.shape[0], z.shape[2], 2, 1, 1).permute(0, 2, 1, 3, 4)
    ts = torch.tensor([[1.0, 1.0], [0.5, 0.75], [0.0, 0.5], [0.0, 0.25], [0.0, 0.0]])
    z = torch.randn(64, 2, 2, 1, 1, generator=torch.Generator().manual_seed(0))
    for name in ("euler", "heun"):
        x = sample(name, den, s, z, ts=ts)
        assert bool(torch.isfinite(x).all()) and x.abs().max() < 10, name
