"""Guidance wrappers and the pipeline's conditioning paths."""

import pytest
import torch

from vidiff.diffusion import (ClassifierFreeGuidance, FrameConditioning, ScheduleConfig,
                             build_schedule, frame_mask)


def test_cfg_formula_eps_and_x0_agree():
    s = build_schedule(ScheduleConfig(kind="cosine"))

    def den(z, t, class_labels):
        return z * 0 + class_labels.float()[:, None]  # x0 = label

    g = ClassifierFreeGuidance(den, 2.0, {"class_labels": torch.tensor([3, 3])},
                               {"class_labels": torch.tensor([1, 1])})
    z, t = torch.randn(2, 4), torch.tensor([0.5, 0.5])
    out = g(z, t)
    assert torch.allclose(out, torch.full((2, 4), (1 + 2.0) * 3 - 2.0 * 1))
    # the same combination in eps space gives the same x0 (eps is affine in x0 at fixed z, t)
    a, sg = s.alpha_sigma(t)
    eps = lambda x0: (z - a[:, None] * x0) / sg[:, None]  # noqa: E731
    e_mix = 3.0 * eps(torch.full((2, 4), 3.0)) - 2.0 * eps(torch.full((2, 4), 1.0))
    assert torch.allclose((z - sg[:, None] * e_mix) / a[:, None], out, atol=1e-5)
    # scale 0 is the conditional model, unbatched gives the same as batched
    assert torch.allclose(ClassifierFreeGuidance(den, 0.0, g.cond, g.uncond)(z, t), torch.full((2, 4), 3.0))
    assert torch.allclose(ClassifierFreeGuidance(den, 2.0, g.cond, g.uncond, batched=False)(z, t), out)


def test_frame_conditioning_replacement_writes_given_frames():
    s = build_schedule(ScheduleConfig(kind="cosine"))
    x = torch.randn(1, 2, 5, 3, 3)
    mask = frame_mask(5, [0, 4])
    seen = {}

    def den(z, t, frame_mask=None):
        seen.update(z=z.clone(), t=t.clone(), frame_mask=frame_mask)
        return torch.zeros_like(z)

    fc = FrameConditioning(den, s, x, mask, method="replacement", cond_t=0.0, pass_mask=True)
    out = fc(torch.randn(1, 2, 5, 3, 3), torch.tensor([0.6]))
    # given frames enter clean (cond_t = 0) at their own time, the rest at t
    assert torch.allclose(seen["z"][:, :, 0], x[:, :, 0]) and torch.allclose(seen["z"][:, :, 4], x[:, :, 4])
    assert torch.allclose(seen["t"], torch.tensor([[0.0, 0.6, 0.6, 0.6, 0.0]]))
    assert torch.equal(seen["frame_mask"], mask)
    assert torch.allclose(out[:, :, 0], x[:, :, 0]) and (out[:, :, 1:4] == 0).all()


def test_reconstruction_guidance_gradient_formula():
    """x~^b = x^b - (w alpha / 2) grad ||x^a - x^a_hat||^2 on a linear denoiser with a known
    gradient: x_hat = A z (frames mixed by a matrix)."""
    s = build_schedule(ScheduleConfig(kind="cosine"))
    F = 3
    A = torch.tensor([[0.5, 0.2, 0.1], [0.0, 0.7, 0.3], [0.2, 0.1, 0.6]])

    def den(z, t):
        return torch.einsum("gf,bcfhw->bcghw", A, z)

    xa = torch.zeros(1, 1, F, 1, 1)
    xa[0, 0, 0] = 1.0
    mask = frame_mask(F, [0])
    t = torch.tensor([0.5])
    fc = FrameConditioning(den, s, xa, mask, method="reconstruction", weight=3.0,
                           generator=torch.Generator().manual_seed(0))
    z = torch.randn(1, 1, F, 1, 1)
    out = fc(z, t)
    # recompute by hand with the same noise for the given frame
    alpha, sigma = s.alpha_sigma(t)
    za = alpha * xa + sigma * torch.randn(xa.shape, generator=torch.Generator().manual_seed(0))
    zin = z.clone()
    zin[:, :, 0] = za[:, :, 0]
    xhat = den(zin, t)
    r = xa[0, 0, 0, 0, 0] - xhat[0, 0, 0, 0, 0]
    grad = -2 * r * A[0]  # d/dz_f of (x^a - A[0] . z)^2
    expect = xhat[0, 0, :, 0, 0] - 3.0 * alpha / 2 * grad
    assert torch.allclose(out[0, 0, 1:, 0, 0], expect[1:], atol=1e-5)
    assert out[0, 0, 0, 0, 0] == 1.0


def test_pipeline_extension_keeps_context_frames(tmp_path):
    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.config import ExperimentConfig
    from vidiff.pipelines import VideoDiffusionPipeline
    exp = ExperimentConfig()
    exp.data.moving_shapes.size, exp.data.moving_shapes.num_frames = 16, 4
    net = UNet3D(UNet3DConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                              attention_levels=(1,), head_channels=8))
    pipe = VideoDiffusionPipeline(net, exp.diffusion, exp)
    clip = torch.rand(1, 3, 4, 16, 16) * 2 - 1
    for method in ("replacement", "reconstruction"):
        out = pipe.extend(clip, total_frames=8, context_frames=2, num_inference_steps=3,
                          conditioning_method=method, progress=False)
        assert out.shape == (1, 8, 16, 16, 3)
        first = ((clip[0] + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
        assert (out[0, :4] == first).all()  # the given clip comes back unchanged


def test_unconditional_guidance_formula():
    """LVDM: x~ = (1 + w) x_c - w x_u, x_u from the same network with the mask dropped."""
    s = build_schedule(ScheduleConfig(kind="cosine"))
    x = torch.zeros(1, 1, 3, 1, 1)
    mask = frame_mask(3, [0])

    def den(z, t, frame_mask=None):
        return torch.full_like(z, 2.0 if frame_mask.any() else 0.5)

    fc = FrameConditioning(den, s, x, mask, method="replacement", cond_t=0.0, pass_mask=True,
                           uncond_weight=1.5)
    out = fc(torch.randn(1, 1, 3, 1, 1), torch.tensor([0.5]))
    assert torch.allclose(out[0, 0, 1:], torch.full((2, 1, 1), 2.5 * 2.0 - 1.5 * 0.5))
    assert out[0, 0, 0].item() == 0.0


def test_autoguidance_formula_and_clip():
    from vidiff.diffusion import AutoGuidance

    calls = []

    def good(z, t, **kw):
        calls.append("good")
        return torch.full_like(z, 0.5)

    def weak(z, t, **kw):
        calls.append("weak")
        return torch.full_like(z, 0.25)

    z, t = torch.randn(2, 3), torch.tensor([0.3, 0.7])
    assert torch.allclose(AutoGuidance(good, weak, 2.0)(z, t), torch.full((2, 3), 3 * 0.5 - 2 * 0.25))
    assert torch.allclose(AutoGuidance(good, weak, 4.0, clip=1.0)(z, t), torch.ones(2, 3))  # 1.5 -> 1
    calls.clear()
    assert torch.allclose(AutoGuidance(good, weak, 0.0)(z, t), torch.full((2, 3), 0.5))
    assert calls == ["good"]  # w = 0 never runs the weak model
    # a guidance interval: guided where lo < t <= hi, the good model's output elsewhere
    ag = AutoGuidance(good, weak, 2.0, interval=(0.5, 1.0))
    assert torch.allclose(ag(z, t), torch.tensor([[0.5] * 3, [1.0] * 3]))
    calls.clear()
    assert torch.allclose(AutoGuidance(good, weak, 2.0, interval=(0.8, 1.0))(z, t),
                          torch.full((2, 3), 0.5))
    assert calls == ["good"]  # no time inside the interval: the weak model is skipped
    video, tf = torch.zeros(1, 3, 2, 4, 4), torch.tensor([[0.2, 0.9]])  # per-frame times
    out = AutoGuidance(good, weak, 2.0, interval=(0.5, 1.0))(video, tf)
    assert (out[:, :, 0] == 0.5).all() and (out[:, :, 1] == 1.0).all()
    with pytest.raises(ValueError, match="interval"):
        AutoGuidance(good, weak, 1.0, interval=(0.6, 0.4))


def _tiny_pipe(seed: int, channels: int = 8):
    from vidiff.config import ExperimentConfig
    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.pipelines import VideoDiffusionPipeline

    exp = ExperimentConfig()
    exp.data.moving_shapes.size, exp.data.moving_shapes.num_frames = 16, 4
    torch.manual_seed(seed)
    net = UNet3D(UNet3DConfig(model_channels=channels, channel_mult=(1, 2), num_res_blocks=1,
                              attention_levels=(1,), head_channels=8))
    for p in net.parameters():  # non-zero everywhere, so two networks really differ
        torch.nn.init.normal_(p, std=0.05)
    return VideoDiffusionPipeline(net, exp.diffusion, exp)


def test_pipeline_autoguidance(tmp_path):
    import pytest

    pipe, other = _tiny_pipe(0), _tiny_pipe(1, channels=16)

    def run(**kw):
        return pipe(num_videos=2, num_inference_steps=3, sampler="ddim", output_type="pt",
                    generator=torch.Generator().manual_seed(0), progress=False, **kw)

    plain = run()
    with pytest.raises(ValueError, match="guide model"):
        run(autoguidance_scale=1.0)
    pipe.guide_model = pipe.model  # guided away from itself: (1 + w) D - w D = D
    assert torch.allclose(run(autoguidance_scale=2.0), plain, atol=1e-5)
    pipe.guide_model = other.model
    assert not torch.allclose(run(autoguidance_scale=2.0), plain, atol=1e-3)
    # export with a bundled guide and a default weight; loading brings both back
    other.save_pretrained(tmp_path / "weak")
    pipe.guide_model = None
    pipe.attach_guide(tmp_path / "weak")
    pipe.experiment.sample.autoguidance_scale = 2.0
    pipe.save_pretrained(tmp_path / "export")
    from vidiff.pipelines import VideoDiffusionPipeline
    back = VideoDiffusionPipeline.from_pretrained(tmp_path / "export")
    assert back.guide_model is not None and back.experiment.sample.autoguidance_scale == 2.0
    assert torch.allclose(back(num_videos=2, num_inference_steps=3, sampler="ddim",
                               output_type="pt", generator=torch.Generator().manual_seed(0),
                               progress=False), run(autoguidance_scale=2.0), atol=1e-5)
    back.guide_model = None  # exporting again without a guide removes the old guide/
    back.save_pretrained(tmp_path / "export")
    assert VideoDiffusionPipeline.from_pretrained(tmp_path / "export").guide_model is None
    # a guide with another parameterisation is refused
    other.diffusion.prediction = "eps" if pipe.diffusion.prediction != "eps" else "v"
    other.experiment.diffusion = other.diffusion
    other.save_pretrained(tmp_path / "weak_eps")
    with pytest.raises(ValueError, match="same noise schedule"):
        pipe.attach_guide(tmp_path / "weak_eps")
