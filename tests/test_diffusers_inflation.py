"""A diffusers UNet2DConditionModel inflated into a video model (Make-A-Video / AnimateDiff):
the image model frame by frame at init, 2D weights untouched when only temporal layers train,
save/load without the original folder, and joint image frames behaving as images."""

import sys

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from vidiff.models import InflatedUNet2DCondition, load_model  # noqa: E402
from vidiff.training.trainable import apply_trainable  # noqa: E402

B, F, C, S, L, D = 2, 4, 4, 16, 5, 32


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tensors are tiny: one thread is as fast, and on a shared CPU two threads fighting
    another process make the module several times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _unet2d():
    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(
        sample_size=S, in_channels=C, out_channels=C, block_out_channels=(32, 64),
        layers_per_block=1, cross_attention_dim=D, norm_num_groups=8, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).eval()


@pytest.fixture(scope="module")
def unet2d():
    return _unet2d()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(B, C, F, S, S, generator=g), torch.rand(B, generator=g),
            torch.randn(B, L, D, generator=g))


@pytest.fixture(scope="module")
def reference(unet2d, inputs):
    """The image model per frame on ``inputs``, with shared and per-frame times."""
    x, t, ctx = inputs
    t_frames = torch.rand(B, F, generator=torch.Generator().manual_seed(3))
    return {"t": _per_frame(unet2d, x, t, ctx), "t_frames": (t_frames, _per_frame(
        unet2d, x, t_frames, ctx))}


@torch.no_grad()
def _per_frame(unet, x, t, ctx):
    """The diffusers image model run on each frame alone."""
    t = t[:, None].expand(B, x.shape[2]) if t.ndim == 1 else t
    return torch.stack([unet(x[:, :, f], t[:, f] * 1000, encoder_hidden_states=ctx).sample
                        for f in range(x.shape[2])], dim=2)


def _randomize_temporal(model):
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "temporal" in n:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def test_equals_image_model_per_frame_at_init(unet2d, inputs, reference, tmp_path):
    """At init every temporal layer is the identity: the video output is the 2D model's, frame
    by frame (shared and per-frame t), whether inflated in memory or from a local folder; an
    image input is exactly the 2D model's output."""
    x, t, ctx = inputs
    unet2d.save_pretrained(tmp_path / "unet")
    from_mem = InflatedUNet2DCondition.from_unet2d(unet2d, head_channels=16).eval()
    from_dir = InflatedUNet2DCondition(InflatedUNet2DCondition.config_class(
        pretrained=str(tmp_path / "unet"), head_channels=16)).eval()
    assert from_dir.config.pretrained is None and from_dir.config.unet2d_config["in_channels"] == C
    t_frames, ref_frames = reference["t_frames"]
    with torch.no_grad():
        out = from_mem(x, t, context=ctx)
        assert out.shape == x.shape
        assert (out - reference["t"]).abs().max() <= 1e-5
        assert (from_mem(x, t_frames, context=ctx) - ref_frames).abs().max() <= 1e-5
        assert (from_dir(x, t, context=ctx) - reference["t"]).abs().max() <= 1e-5
        image = from_mem(x[:, :, 0], t, context=ctx)
        assert torch.equal(image, unet2d(x[:, :, 0], t * 1000, encoder_hidden_states=ctx).sample)
    assert len(from_mem.temporal_modules()) == len(from_dir.temporal_modules()) == 15
    assert not any("temporal" in n for n, _ in unet2d.named_parameters())  # not wrapped in place


def test_training_temporal_layers_leaves_2d_weights_bit_identical(unet2d, inputs, reference):
    """apply_trainable(["*temporal*"]) selects exactly the inserted layers; after AdamW steps
    every 2D weight is torch.equal to the original, every temporal tensor moved, and the output
    is no longer the per-frame image model's."""
    x, t, ctx = inputs
    model = InflatedUNet2DCondition.from_unet2d(unet2d, head_channels=16)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = apply_trainable(model, ["*temporal*"])
    temporal_ids = {id(p) for m in model.temporal_modules() for p in m.parameters()}
    assert {id(p) for n, p in model.named_parameters() if n in trainable} == temporal_ids
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    target = torch.randn_like(x)
    for _ in range(3):
        loss = (model(x, t, context=ctx) - target).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    own = dict(unet2d.named_parameters())
    for n, p in model.named_parameters():
        if n in trainable:
            assert not torch.equal(p, before[n]), n
        else:
            assert torch.equal(p, before[n]), n
            assert torch.equal(p, own[n.removeprefix("unet.").replace(".base.", ".")]), n
    with torch.no_grad():
        assert (model(x, t, context=ctx) - reference["t"]).abs().max() > 1e-3


def test_save_load_round_trip_without_original_folder(unet2d, inputs, tmp_path):
    """vidiff's save_pretrained / load_model rebuild the model from config.json (the diffusers
    config inside it) and model.safetensors alone: identical outputs."""
    x, t, ctx = inputs
    unet2d.save_pretrained(tmp_path / "unet")
    model = InflatedUNet2DCondition(InflatedUNet2DCondition.config_class(
        pretrained=str(tmp_path / "unet"), head_channels=16, num_frames=F, sample_size=S))
    _randomize_temporal(model)
    model.save_pretrained(tmp_path / "video")
    for f in (tmp_path / "unet").iterdir():
        f.unlink()
    (tmp_path / "unet").rmdir()
    loaded = load_model(tmp_path / "video")
    assert isinstance(loaded, InflatedUNet2DCondition)
    assert loaded.sample_shape == (F, S)
    assert loaded.accepted_conditions == {"context", "frame_groups"}
    with torch.no_grad():
        assert torch.equal(model(x, t, context=ctx), loaded(x, t, context=ctx))


def test_frame_alone_in_its_group_is_an_image(unet2d, inputs, reference):
    """Joint image-video training: an image appended as a frame in a group of its own comes out
    as the image input does, with trained (non-identity) temporal layers; the clip's frames are
    unaffected by it."""
    x, t, ctx = inputs
    model = InflatedUNet2DCondition.from_unet2d(unet2d, head_channels=16).eval()
    _randomize_temporal(model)
    image = torch.randn(B, C, S, S, generator=torch.Generator().manual_seed(4))
    joint = torch.cat([x, image[:, :, None]], dim=2)
    groups = torch.tensor([[0] * F + [1]] * B)
    with torch.no_grad():
        out = model(joint, t, context=ctx, frame_groups=groups)
        alone = model(image, t, context=ctx)
        clip = model(x, t, context=ctx)
    assert (out[:, :, F] - alone).abs().max() <= 1e-5
    assert (out[:, :, :F] - clip).abs().max() <= 1e-5
    assert (clip - reference["t"]).abs().max() > 1e-3  # the layers do mix frames


def test_bad_inputs_are_one_line_errors(unet2d, inputs, monkeypatch):
    x, t, ctx = inputs
    model = InflatedUNet2DCondition.from_unet2d(unet2d)
    with pytest.raises(ValueError, match="context"):
        model(x, t)
    with pytest.raises(ValueError, match=r"t must be"):
        model(x, torch.rand(B, F + 1), context=ctx)
    with pytest.raises(ValueError, match="frame_groups"):
        model(x, t, context=ctx, frame_groups=torch.zeros(B, F + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="unet2d_config"):
        InflatedUNet2DCondition(InflatedUNet2DCondition.config_class())
    with pytest.raises(ValueError, match="unknown or fixed"):
        InflatedUNet2DCondition.from_unet2d(unet2d, pretrained="x")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # diffusers not installed
    with pytest.raises(ImportError, match=r"pip install vidiff\[diffusers\]"):
        InflatedUNet2DCondition(InflatedUNet2DCondition.config_class(
            unet2d_config=dict(unet2d.config)))


def test_text_encoder_width_is_checked_against_cross_attention(unet2d):
    from vidiff.conditioning.text import TextConditionEncoder

    model = InflatedUNet2DCondition.from_unet2d(unet2d)
    assert model.config.context_dim == D and "context" in model.accepted_conditions

    class Wide:  # a 384-wide encoder, like MiniLM
        dim = 384

    with pytest.raises(ValueError, match=f"context_dim is {D} but its text encoder gives 384"):
        TextConditionEncoder(Wide()).for_sampling(
            model, {"prompt": "a red circle"}, 1, device=torch.device("cpu"), generator=None,
            guidance_scale=0.0, defaults=None)
