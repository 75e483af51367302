"""The ST-DiT (Open-Sora's backbone of Tora): a per-frame image DiT at init (temporal blocks
zero), RoPE and scaled sin-cos positions, per-frame times, variable frames and resolution,
gradient checkpointing, and training with rectified flow with image conditioning that keeps the
given frame."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidiff.config import load_config
from vidiff.models import STDiT, STDiTConfig
from vidiff.nn.transformer import rope, sincos_2d
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(in_channels=4, hidden_size=32, depth=2, num_heads=2, context_dim=16, base_size=4)


def _randomize(m: torch.nn.Module, seed: int = 0, skip: str = "temporal") -> None:
    """Perturb every weight except those of temporal blocks (kept as initialised)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i, block in enumerate(m.blocks):
            if block.axis != skip:
                for p in block.parameters():
                    p.add_(0.1 * torch.randn(p.shape, generator=g))
        for p in [*m.proj_out.parameters(), m.final_table]:
            p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("temporal_cross", [True, False])
def test_at_init_it_is_an_image_model_frame_by_frame(temporal_cross):
    m = STDiT(STDiTConfig(**SMALL, temporal_cross_attention=temporal_cross)).eval()
    assert [b.cross is not None for b in m.blocks] == [True, temporal_cross] * 2
    _randomize(m)
    x, t, ctx = torch.randn(2, 4, 5, 8, 8), torch.rand(2, 5), torch.randn(2, 3, 16)
    with torch.no_grad():
        clip = m(x, t, context=ctx)
        for f in range(5):
            one = m(x[:, :, f:f + 1], t[:, f:f + 1], context=ctx)
            assert torch.allclose(clip[:, :, f:f + 1], one, atol=1e-5)
    assert all(b.axis == ("spatial", "temporal")[i % 2] for i, b in enumerate(m.blocks))


def test_per_frame_times_modulate_each_frame():
    m = STDiT(STDiTConfig(**SMALL)).eval()
    _randomize(m, skip="none")
    x = torch.randn(1, 4, 3, 8, 8)
    with torch.no_grad():
        a = m(x, torch.tensor([[0.0, 0.5, 0.5]]))
        b = m(x, torch.tensor([[0.5, 0.5, 0.5]]))
        c = m(x, torch.tensor(0.5).reshape(1))
    assert not torch.allclose(a, b) and torch.allclose(b, c, atol=1e-6)


def test_rope_depends_on_relative_position_only():
    q, k = torch.randn(1, 8), torch.randn(1, 8)
    def score(i, j):
        return (rope(q, torch.tensor([i])) * rope(k, torch.tensor([j]))).sum()
    assert torch.allclose(score(3, 1), score(7, 5), atol=1e-5)
    assert torch.allclose(score(0, 0), (q * k).sum(), atol=1e-6)
    assert not torch.allclose(score(3, 1), score(3, 2))


def test_sincos_positions_are_scaled_to_the_resolution():
    small, big = sincos_2d(4, 4, 16, base_size=4), sincos_2d(8, 8, 16, base_size=4)
    grid = big.reshape(8, 8, 16)[::2, ::2].reshape(16, 16)  # every other token of the 8x8 grid
    assert torch.allclose(grid, small, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(2, 2, 6)


def test_variable_frames_resolution_and_gradient_checkpointing():
    m = STDiT(STDiTConfig(**{**SMALL, "gradient_checkpointing": True}))
    _randomize(m, skip="none")
    for shape in [(1, 4, 1, 8, 8), (1, 4, 7, 12, 16)]:
        assert m(torch.randn(shape), torch.rand(1)).shape == shape
    x, t, ctx = torch.randn(2, 4, 3, 8, 8), torch.rand(2), torch.randn(2, 3, 16)
    m.train()
    m(x, t, context=ctx).square().mean().backward()
    ckpt = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m.config.gradient_checkpointing = False
    m(x, t, context=ctx).square().mean().backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(ckpt, m.parameters()))
    with pytest.raises(ValueError, match="divisible by the patch size 2"):
        m(torch.randn(1, 4, 2, 9, 8), torch.rand(1))


def test_trains_with_rectified_flow_and_keeps_a_given_frame(tmp_path):
    from vidiff.pipelines import VideoDiffusionPipeline

    cfg = load_config(ROOT / "configs" / "vdm_tiny.yaml", [
        f"train.out_dir={tmp_path}", "train.steps=3", "train.batch_size=2",
        "train.progress=false", "train.tensorboard=false", "train.log_every=1",
        "data.moving_shapes.size=16", "data.moving_shapes.num_frames=4",
        "diffusion.schedule.kind=rectified_flow", "diffusion.prediction=flow",
        "diffusion.weighting=uniform", "diffusion.clip=null",
        "diffusion.frame_masks={none: 0.5, first: 0.5}", "sample.sampler=euler",
        "sample.steps=4", "sample.num_frames=4"])
    cfg.model = {"type": "STDiT", "in_channels": 3, "hidden_size": 32, "depth": 1,
                 "num_heads": 2, "patch_size": 4}
    Trainer(cfg).fit()
    pipe = VideoDiffusionPipeline.from_pretrained(tmp_path)
    assert isinstance(pipe.model, STDiT)
    given = torch.rand(1, 3, 4, 16, 16) * 2 - 1
    mask = torch.tensor([[True, False, False, False]])
    out = pipe(num_videos=1, given_frames=given, given_mask=mask, output_type="pt",
               generator=torch.Generator().manual_seed(0), **pipe.conditioning_defaults())
    assert out.shape == (1, 3, 4, 16, 16)
    assert torch.allclose(out[:, :, 0], given[:, :, 0].clamp(-1, 1), atol=1e-5)


# -- trajectory control: extractor and motion-guidance fuser ------------------------------------
@pytest.mark.parametrize("fuser", ["adanorm", "concat", "cross"])
@pytest.mark.parametrize("placement", ["temporal", "spatial", "all"])
def test_adding_the_adapter_changes_no_output(fuser, placement):
    base = STDiT(STDiTConfig(**SMALL)).eval()
    _randomize(base, skip="none")
    tora = STDiT(STDiTConfig(**SMALL, motion_channels=3, motion_fuser=fuser,
                             motion_placement=placement)).eval()
    missing, extra = tora.load_state_dict(base.state_dict(), strict=False)
    assert not extra and all(k.startswith(("extractor.", "fusers.")) for k in missing)
    want = {"temporal": [1, 3], "spatial": [0, 2], "all": [0, 1, 2, 3]}[placement]
    assert sorted(int(k) for k in tora.fusers) == want
    x, t, ctx = torch.randn(2, 4, 3, 8, 8), torch.rand(2), torch.randn(2, 3, 16)
    g_m = torch.randn(2, 3, 3, 8, 8)
    with torch.no_grad():
        same = tora(x, t, context=ctx, motion=g_m)
        assert torch.equal(same, base(x, t, context=ctx))
        for p in tora.fusers.parameters():  # once trained, the motion matters
            p.add_(0.1)
        assert not torch.allclose(tora(x, t, context=ctx, motion=g_m), same)
    assert "motion" in tora.accepted_conditions and "motion" not in base.accepted_conditions


def test_extractor_features_chain_with_skips():
    from vidiff.models.tora.motion import TrajectoryExtractor

    te = TrajectoryExtractor(3, 8, 2, 3)
    g_m = torch.randn(1, 3, 2, 8, 8)
    feats = te(g_m)
    assert [f.shape for f in feats] == [(1, 2, 16, 8)] * 3
    with torch.no_grad():  # f_i = Conv_i(f_{i-1}) + f_{i-1}
        f0 = te.patch(g_m)
        from einops import rearrange
        f0 = rearrange(f0, "b d f h w -> (b f) d h w")
        f1 = te.convs[0](f0) + f0
        assert torch.allclose(rearrange(f1, "(b f) d h w -> b f (h w) d", b=1), feats[0],
                              atol=1e-6)
    tora = STDiT(STDiTConfig(**SMALL, motion_channels=3))
    with pytest.raises(ValueError, match=r"motion latents must be \(1, 3, 2, 8, 8\)"):
        tora(torch.randn(1, 4, 2, 8, 8), torch.rand(1), motion=torch.randn(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="motion fuser must be one of"):
        STDiT(STDiTConfig(**SMALL, motion_channels=3, motion_fuser="film"))


@pytest.mark.parametrize("fuser", ["adanorm", "concat", "cross"])
def test_the_same_adapter_on_the_unet_starts_as_the_identity(fuser):
    from vidiff.models import UNet3D, UNet3DConfig

    kw = dict(in_channels=3, out_channels=3, model_channels=16, channel_mult=(1, 2),
              num_res_blocks=1, attention_levels=(1,), temporal_attention_levels=(0, 1),
              head_channels=8)
    base = UNet3D(UNet3DConfig(**kw)).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    tora = UNet3D(UNet3DConfig(**kw, motion_channels=3, motion_fuser=fuser)).eval()
    missing, extra = tora.load_state_dict(base.state_dict(), strict=False)
    assert not extra and missing and all("motion" in k for k in missing)
    fusers = [n for n, m in tora.named_modules() if type(m).__name__ == "MotionFuser"]
    assert len(fusers) == 7  # after every temporal attention: 2 down, 1 mid, 4 up
    x, t, g_m = torch.randn(2, 3, 4, 8, 8), torch.rand(2), torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        same = tora(x, t, motion=g_m)
        assert torch.allclose(same, base(x, t), atol=1e-6)
        for n, p in tora.named_parameters():
            if "motion" in n:
                p.add_(0.1)
        assert not torch.allclose(tora(x, t, motion=g_m), same)
    assert tora.pipeline_class == "TrajectoryPipeline" and base.pipeline_class is None


def test_adapter_training_leaves_frozen_weights_bit_identical(tmp_path):
    cfg = load_config(ROOT / "configs" / "vdm_tiny.yaml", [
        f"train.out_dir={tmp_path}", "train.steps=2", "train.batch_size=2",
        "train.progress=false", "train.tensorboard=false", "train.log_every=1",
        "train.lr=1e-2", "train.warmup_steps=0", "data.flow=true",
        "data.moving_shapes.size=16", "data.moving_shapes.num_frames=4",
        "diffusion.schedule.kind=rectified_flow", "diffusion.prediction=flow",
        "diffusion.weighting=uniform", "diffusion.clip=null",
        "trajectory={compression: avg_pool, temporal_factor: 1, spatial_factor: 1, "
        "mode: dense}", "train.trainable=[TemporalBlock, extractor.*, fusers.*]"])
    cfg.model = {"type": "STDiT", "in_channels": 3, "hidden_size": 32, "depth": 1,
                 "num_heads": 2, "patch_size": 4, "motion_channels": 3}
    tr = Trainer(cfg)
    with torch.no_grad():  # a trained base model (its zero output layer would pass no gradient)
        tr.model.proj_out.weight.normal_(0, 0.1)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    now = tr.model.state_dict()
    adapter = ("blocks.1.", "extractor.", "fusers.")  # the temporal block, TE and MGF
    moved = {k for k in now if not torch.equal(now[k], before[k])}
    assert moved and all(k.startswith(adapter) for k in moved)
    frozen = [k for k in now if not k.startswith(adapter)]
    assert frozen and all(torch.equal(now[k], before[k]) for k in frozen)
