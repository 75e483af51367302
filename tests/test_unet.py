"""The space-time U-Net: shapes, identity-at-init of temporal layers, image/video agreement,
masked temporal attention, conditioning inputs, checkpointing and save/load."""

import pytest
import torch

from vidiff.models import UNet3D, UNet3DConfig, load_model

SMALL = dict(model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
             temporal_attention_levels=(0, 1), head_channels=8)


def _randomize(m: torch.nn.Module, skip_temporal: bool = False):
    """Give every zero-initialised weight a value, so tests see the trained-network case."""
    g = torch.Generator().manual_seed(0)
    for name, p in m.named_parameters():
        if skip_temporal and ".1." in name and "attn" in name:
            continue
        with torch.no_grad():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_shapes_video_image_per_frame_t():
    m = UNet3D(UNet3DConfig(**SMALL))
    x = torch.randn(2, 3, 5, 16, 16)
    assert m(x, torch.rand(2)).shape == x.shape
    assert m(x, torch.rand(2, 5)).shape == x.shape
    assert m(x[:, :, 0], torch.rand(2)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="divisible"):
        m(torch.randn(1, 3, 2, 15, 15), torch.rand(1))


def _temporal_modules(m):
    from vidiff.nn import TemporalAttention
    return [mod for mod in m.modules() if isinstance(mod, TemporalAttention)]


def test_temporal_layers_are_identity_at_init_and_image_video_agree():
    torch.manual_seed(0)
    m = UNet3D(UNet3DConfig(**SMALL))
    _randomize(m)
    for tm in _temporal_modules(m):  # back to the init state of the temporal layers
        torch.nn.init.zeros_(tm.attn.to_out.weight)
        torch.nn.init.zeros_(tm.attn.to_out.bias)
    x = torch.randn(2, 3, 4, 16, 16)
    t = torch.rand(2)
    video = m(x, t)
    frames = torch.stack([m(x[:, :, f], t) for f in range(4)], dim=2)
    assert torch.allclose(video, frames, atol=1e-5)


def test_temporal_attention_mixes_frames_once_trained():
    m = UNet3D(UNet3DConfig(**SMALL))
    _randomize(m)
    x = torch.randn(1, 3, 4, 16, 16)
    t = torch.rand(1)
    y = m(x, t)
    x2 = x.clone()
    x2[:, :, 3] += 1.0
    y2 = m(x2, t)
    assert (y2[:, :, 0] - y[:, :, 0]).abs().max() > 1e-4  # frame 0 sees frame 3


def test_frame_groups_isolate_appended_images():
    """Joint image-video training: images appended as frames do not mix with the clip."""
    m = UNet3D(UNet3DConfig(**SMALL))
    _randomize(m)
    x = torch.randn(1, 3, 6, 16, 16)
    groups = torch.tensor([[0, 0, 0, 0, 1, 2]])
    t = torch.rand(1)
    y = m(x, t, frame_groups=groups)
    x2 = x.clone()
    x2[:, :, 4:] = torch.randn(1, 3, 2, 16, 16)  # change the images
    y2 = m(x2, t, frame_groups=groups)
    assert torch.allclose(y[:, :, :4], y2[:, :, :4], atol=1e-5)
    # each image frame alone equals the image path
    img = m(x[:, :, 5], t)
    assert torch.allclose(y[:, :, 5], img, atol=1e-5)
    # and the clip part equals the clip alone
    assert torch.allclose(y[:, :, :4], m(x[:, :, :4], t), atol=1e-5)


def test_per_frame_timesteps_change_only_through_their_frames_at_init_temporal():
    m = UNet3D(UNet3DConfig(**SMALL, temporal_attention=False))
    _randomize(m)
    x = torch.randn(1, 3, 3, 16, 16)
    t1 = torch.tensor([[0.2, 0.5, 0.9]])
    t2 = torch.tensor([[0.2, 0.5, 0.1]])
    y1, y2 = m(x, t1), m(x, t2)
    assert torch.allclose(y1[:, :, :2], y2[:, :, :2], atol=1e-6)
    assert not torch.allclose(y1[:, :, 2], y2[:, :, 2], atol=1e-4)


@pytest.mark.parametrize("how", ["add", "cross_attention"])
def test_class_labels_mask_channel_and_fps(how):
    cfg = UNet3DConfig(**SMALL, num_classes=4, class_embedding=how, mask_channel=True,
                       fps_conditioning=True)
    m = UNet3D(cfg)
    _randomize(m)
    x = torch.randn(2, 3, 4, 16, 16)
    t = torch.rand(2)
    fps = torch.tensor([8.0, 8.0])
    mask = torch.tensor([[True, False, False, False]] * 2)
    a = m(x, t, class_labels=torch.tensor([0, 1]), frame_mask=mask, fps=fps)
    b = m(x, t, class_labels=torch.tensor([2, 1]), frame_mask=mask, fps=fps)
    assert not torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)
    c = m(x, t, class_labels=torch.tensor([0, 1]), frame_mask=~mask, fps=fps)
    assert not torch.allclose(a, c, atol=1e-5)
    d = m(x, t, class_labels=torch.tensor([0, 1]), frame_mask=mask, fps=fps * 2)
    assert not torch.allclose(a, d, atol=1e-5)
    with pytest.raises(ValueError, match="fps"):
        m(x, t)


def test_text_context_cross_attention():
    m = UNet3D(UNet3DConfig(**SMALL, context_dim=12))
    _randomize(m)
    x = torch.randn(1, 3, 2, 16, 16)
    t = torch.rand(1)
    c1, c2 = torch.randn(1, 5, 12), torch.randn(1, 5, 12)
    assert not torch.allclose(m(x, t, context=c1), m(x, t, context=c2), atol=1e-5)


def test_gradient_checkpointing_same_gradients():
    torch.manual_seed(0)
    m1 = UNet3D(UNet3DConfig(**SMALL))
    _randomize(m1)
    m2 = UNet3D(UNet3DConfig(**SMALL, gradient_checkpointing=True))
    m2.load_state_dict(m1.state_dict())
    x, t = torch.randn(1, 3, 3, 16, 16), torch.rand(1)
    for m in (m1, m2):
        m.train()
        m(x, t).square().mean().backward()
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        assert torch.allclose(p1.grad, p2.grad, atol=1e-6), n


def test_save_and_load_pretrained(tmp_path):
    m = UNet3D(UNet3DConfig(**SMALL, num_classes=3))
    _randomize(m)
    m.save_pretrained(tmp_path / "unet")
    m2 = load_model(tmp_path / "unet")
    assert isinstance(m2, UNet3D) and m2.config == m.config
    x, t = torch.randn(1, 3, 2, 16, 16), torch.rand(1)
    assert torch.equal(m(x, t), m2(x, t))
    assert sorted(p.name for p in (tmp_path / "unet").iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing")


def test_bf16_autocast_close_to_fp32():
    m = UNet3D(UNet3DConfig(**SMALL))
    _randomize(m)
    x, t = torch.randn(2, 3, 4, 16, 16), torch.rand(2)
    y = m(x, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yb = m(x, t).float()
    assert (y - yb).abs().max() / y.abs().max() < 0.05


def test_cpu_math_attention_path_matches_sdpa():
    import torch.nn.functional as F
    from vidiff.nn.attention import attention
    q, k, v = (torch.randn(2, 3, 2, 8, 16) for _ in range(3))
    bias = torch.randn(2, 1, 2, 8, 8)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    got = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias).float()  # math path
    assert (got - ref).abs().max() < 0.05
    mask = torch.rand(2, 1, 1, 8, 8) > 0.3
    mask[..., torch.arange(8), torch.arange(8)] = True
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask).float() - ref).abs().max() < 0.05


def test_linear_spatial_attention_option():
    from vidiff.nn.attention import LinearAttention
    m = UNet3D(UNet3DConfig(**SMALL, spatial_attention="linear"))
    assert any(isinstance(x, LinearAttention) for x in m.modules())
    _randomize(m)
    x = torch.randn(1, 3, 2, 16, 16)
    y = m(x, torch.rand(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    la = LinearAttention(8, heads=2)
    torch.nn.init.normal_(la.to_out.weight)
    t = torch.randn(3, 10, 8)
    perm = torch.randperm(10)
    assert torch.allclose(la(t)[:, perm], la(t[:, perm]), atol=1e-5)  # permutation-equivariant
    # the reference formula: q softmaxed over features, k over positions, q (k^T v) / sqrt(d)
    q, kv = la.to_q(t).view(3, 10, 2, 4).transpose(1, 2), la.to_kv(t).view(3, 10, 2, 2, 4)
    k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
    ref = (q.softmax(-1) @ (k.softmax(-2).transpose(-1, -2) @ v)) / 2.0
    assert torch.allclose(la(t), la.to_out(ref.transpose(1, 2).reshape(3, 10, 8)), atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 stays close to float32
        low = la(t).float()
    assert (low - la(t)).abs().max() < 0.05 * la(t).abs().max()
    with pytest.raises(ValueError):
        UNet3D(UNet3DConfig(**SMALL, spatial_attention="sparse"))


def test_fixed_attention_width_with_num_heads():
    """num_heads fixes the attention width (num_heads * head_channels) at every level; the
    layers still start as the identity and the default keeps one head per head_channels."""
    from vidiff.nn import SpatialAttention, TemporalAttention
    cfg = dict(SMALL, attention_levels=(0, 1), context_dim=12)
    default = UNet3D(UNet3DConfig(**cfg))
    fixed = UNet3D(UNet3DConfig(**cfg, num_heads=1))
    for m, widths in ((default, {16, 32}), (fixed, {8})):
        layers = [a.attn for a in m.modules() if isinstance(a, (SpatialAttention, TemporalAttention))]
        layers += [a.cross for a in m.modules() if isinstance(a, SpatialAttention)]
        assert {a.to_q.out_features for a in layers} == widths
        assert all(a.heads * a.head_dim == a.to_q.out_features for a in layers)
    assert {a.attn.heads for a in default.modules() if isinstance(a, TemporalAttention)} == {2, 4}
    assert sum(p.numel() for p in fixed.parameters()) < sum(p.numel() for p in default.parameters())
    x, t, ctx = torch.randn(2, 3, 4, 16, 16), torch.rand(2), torch.randn(2, 3, 12)
    y = fixed(x, t, context=ctx)
    frames = torch.stack([fixed(x[:, :, f], t, context=ctx) for f in range(4)], dim=2)
    assert torch.allclose(y, frames, atol=1e-5)  # identity temporal layers at init
    _randomize(fixed)
    assert torch.isfinite(fixed(x, t, context=ctx)).all()
    with pytest.raises(ValueError, match="num_heads"):
        UNet3D(UNet3DConfig(**cfg, num_heads=0))


def test_added_class_embedding_starts_unconditional():
    """Zero-initialised class embedding: a model fine-tuned from an unconditional one starts
    out exactly equal to it, whatever the label."""
    m = UNet3D(UNet3DConfig(**SMALL, num_classes=3))
    _randomize(m)
    torch.nn.init.zeros_(m.class_embed.weight)
    x, t = torch.randn(2, 3, 4, 16, 16), torch.rand(2)
    a = m(x, t)
    b = m(x, t, class_labels=torch.tensor([0, 2]))
    assert torch.equal(a, b)
