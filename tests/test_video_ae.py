"""LVDM's 3D autoencoder: shapes, replicate padding, temporal shift-equivariance, chunked
coding equal to whole-clip coding, save/load."""

import pytest
import torch

from vidiff.models import load_model
from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig

CFG = VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2), spatial_factor=4,
                             temporal_factor=4, latent_channels=4)


@pytest.fixture(scope="module")
def ae():
    torch.manual_seed(0)
    return VideoAutoencoder(CFG).eval()


def test_shapes_and_replicate_padding(ae):
    x = torch.randn(2, 3, 8, 16, 16)
    post = ae.encode(x)
    assert post.mean.shape == (2, 4, 2, 4, 4)
    rec, _ = ae(x)
    assert rec.shape == x.shape
    convs = [m for m in ae.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size[0] > 1]
    assert convs and all(m.padding_mode == "replicate" for m in convs)
    with pytest.raises(ValueError, match="divisible"):
        ae.encode(torch.randn(1, 3, 6, 16, 16))


def test_patch_size_and_per_frame_2d_variant():
    """Space-to-depth patches are part of f_s and invert exactly (shapes round-trip, every
    pixel of a patch reaches the code); temporal_kernel=1 is a per-frame 2D autoencoder: a
    frame's code depends on that frame only."""
    torch.manual_seed(0)
    ae = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2), patch_size=2,
                                                 spatial_factor=4, temporal_factor=2)).eval()
    x = torch.randn(1, 3, 4, 16, 16, requires_grad=True)
    z = ae.encode(x).mean
    assert z.shape == (1, 4, 2, 4, 4) and ae(x)[0].shape == x.shape
    z[0, :, 0, 0, 0].sum().backward()  # the top-left latent sees the top-left 2x2 patch
    assert (x.grad[0, :, :2, :2, :2].abs() > 0).all()
    ae2d = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2),
                                                   spatial_factor=8, patch_size=2,
                                                   temporal_factor=1, temporal_kernel=1)).eval()
    x = torch.randn(1, 3, 5, 16, 16)
    y = x.clone()
    y[:, :, 2] = torch.randn(3, 16, 16)
    with torch.no_grad():
        a, b = ae2d.encode(x).mean, ae2d.encode(y).mean
    assert a.shape == (1, 4, 5, 2, 2)
    changed = (a - b).abs().flatten(3).amax((0, 1, 3)) > 0
    assert changed.tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError, match="temporal_factor 1"):
        VideoAutoencoder(VideoAutoencoderConfig(temporal_kernel=1, temporal_factor=4))


def test_output_stage_starts_as_identity_and_chunks():
    """The full-resolution output stage is zero at init: an autoencoder with it decodes exactly
    like the same weights without it (so a trained checkpoint can be fine-tuned with it); once
    trained it changes the output, and chunked decoding still equals whole-clip decoding."""
    torch.manual_seed(0)
    cfg = VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2), patch_size=4,
                                 spatial_factor=4, temporal_factor=4, latent_channels=4)
    base = VideoAutoencoder(cfg).eval()
    staged = VideoAutoencoder(VideoAutoencoderConfig(**{**cfg.__dict__, "output_stage": 8})).eval()
    missing, unexpected = staged.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("out_stage.") for k in missing)
    z = torch.randn(1, 4, 6, 4, 4)
    with torch.no_grad():
        assert torch.equal(staged.decode(z), base.decode(z))
        torch.nn.init.normal_(staged.out_stage.conv_out.weight, std=0.1)
        out = staged.decode(z)
        assert out.shape == (1, 3, 24, 16, 16) and not torch.allclose(out, base.decode(z))
        parts = list(staged.decode_chunked(z, chunk=2))
    assert torch.allclose(torch.cat(parts, dim=2), out, atol=1e-5)
    convs = [m for m in staged.out_stage.modules() if isinstance(m, torch.nn.Conv3d)
             and m.kernel_size[1] > 1]
    assert convs and all(m.padding_mode == "replicate" for m in convs)


def test_temporal_shift_equivariance(ae):
    """Shifting the input by f_t frames shifts the latent by one frame, away from the ends."""
    x = torch.randn(1, 3, 96, 8, 8)
    shifted = torch.cat([x[:, :, 4:], x[:, :, -4:]], dim=2)
    with torch.no_grad():
        z, z2 = ae.encode(x).mean, ae.encode(shifted).mean
    rf = ae.temporal_receptive_field()
    inner = slice(rf, z.shape[2] - 1 - rf)
    assert torch.allclose(z2[:, :, inner], z[:, :, inner.start + 1:inner.stop + 1], atol=1e-5)
    # and near the start, where the padding differs, it is not (the test can fail)
    assert not torch.allclose(z2[:, :, 0], z[:, :, 1], atol=1e-3)


def test_chunked_equals_whole(ae):
    x = torch.randn(1, 3, 96, 8, 8)
    with torch.no_grad():
        z = ae.encode(x).mean
        assert torch.allclose(ae.encode_chunked(x, chunk=3), z, atol=1e-5)
        whole = ae.decode(z)
        parts = list(ae.decode_chunked(z, chunk=5))
    assert len(parts) == 5 and torch.allclose(torch.cat(parts, dim=2), whole, atol=1e-5)


def test_kl_and_plain_bottlenecks_and_save_load(tmp_path, ae):
    x = torch.randn(1, 3, 4, 8, 8)
    _, post = ae(x)
    assert post.kl().item() >= 0
    plain = VideoAutoencoder(VideoAutoencoderConfig(**{**CFG.__dict__, "bottleneck": "plain"}))
    rec, none = plain(x)
    assert none is None and rec.shape == x.shape
    ae.save_pretrained(tmp_path / "ae")
    back = load_model(tmp_path / "ae")
    with torch.no_grad():
        assert torch.equal(back.encode(x).mean, ae.encode(x).mean)


def test_latent_diffusion_trains_and_samples_pixels(tmp_path):
    """LVDM's pipeline: a frozen autoencoder in front of the U-Net, carried in the checkpoint."""
    from test_training import tiny
    from vidiff.pipelines import VideoDiffusionPipeline
    from vidiff.training import Trainer
    ae = VideoAutoencoder(VideoAutoencoderConfig(**{**CFG.__dict__, "scale_factor": 0.5}))
    ae.save_pretrained(tmp_path / "ae")
    cfg = tiny(tmp_path / "run", "train.steps=2", "train.ckpt_every=2",
               f"autoencoder={tmp_path / 'ae'}", "model.in_channels=4", "model.out_channels=4",
               "model.channel_mult=[1]", "model.attention_levels=[0]",
               "model.temporal_attention_levels=[0]", "diffusion.clip=null",
               "data.moving_shapes.num_frames=8")
    res = Trainer(cfg).fit()
    assert res.checkpoint.name == "step_000002"  # not named after the submodel
    assert (res.checkpoint / "autoencoder" / "model.safetensors").is_file()
    pipe = VideoDiffusionPipeline.from_pretrained(res.checkpoint)
    assert pipe.sample_shape(1, None) == (1, 4, 2, 4, 4)
    out = pipe(num_videos=1, num_inference_steps=2, progress=False)
    assert out.shape == (1, 8, 16, 16, 3)


def test_latent_cache_windows_and_training(tmp_path):
    """`vidiff encode-latents` writes the posterior means of each clip; LatentDataset yields
    every window (dense or strided) of them; latent diffusion trains on the cache."""
    from vidiff.cli import main
    from vidiff.data.latents import LatentDataset, read_cache_metadata
    from vidiff.data.datasets import MovingShapesDataset
    from vidiff.data.moving_shapes import MovingShapesConfig
    from test_training import tiny
    from vidiff.training import Trainer
    ae = VideoAutoencoder(VideoAutoencoderConfig(**{**CFG.__dict__, "scale_factor": 0.5}))
    ae.save_pretrained(tmp_path / "ae")
    cache = tmp_path / "z.safetensors"
    assert main(["encode-latents", str(tmp_path / "ae"), "--out", str(cache), "--num-clips", "3",
                 "--frames", "24", "--size", "16", "--batch-size", "2"]) == 0
    meta = read_cache_metadata(cache)
    assert meta["latent_shape"] == [4, 6, 4, 4] and meta["source"] == "moving_shapes"
    ds = LatentDataset(cache, num_frames=8, frame_stride=2, size=16)  # 2 latents, 2 apart
    assert len(ds) == 3 * 4
    cfg_ms = MovingShapesConfig(size=16, num_frames=24, min_objects=1, max_objects=2)
    clip = MovingShapesDataset(cfg_ms, label="num_objects")[1]
    with torch.no_grad():
        z = ae.encode(clip["video"][None]).mean[0]
    item = ds[1 * 4 + 3]  # clip 1, offset 3: latent frames 3 and 5
    assert item["latents"].shape == (4, 2, 4, 4) and item["label"] == clip["label"]
    assert torch.allclose(item["latents"], z[:, [3, 5]], atol=1e-2)  # cached as float16
    with pytest.raises(ValueError, match="spans"):
        LatentDataset(cache, num_frames=16, frame_stride=2)
    cfg = tiny(tmp_path / "run", "train.steps=2", "train.ckpt_every=2",
               f"autoencoder={tmp_path / 'ae'}", "model.in_channels=4", "model.out_channels=4",
               "model.channel_mult=[1]", "model.attention_levels=[0]",
               "model.temporal_attention_levels=[0]", "diffusion.clip=null",
               "data.kind=latents", f"data.path={cache}", "data.num_frames=8", "data.size=16")
    res = Trainer(cfg).fit()
    assert all(torch.isfinite(torch.tensor(res.losses)))
    from vidiff.pipelines import VideoDiffusionPipeline
    pipe = VideoDiffusionPipeline.from_pretrained(res.checkpoint)
    assert pipe.sample_shape(1, None) == (1, 4, 2, 4, 4)
    # `vidiff eval` finds the Moving Shapes setting in the cache the model trained on
    report = tmp_path / "eval.json"
    assert main(["eval", str(res.checkpoint), "--num-videos", "2", "--steps", "2",
                 "--json", str(report)]) == 0
    import json
    r = json.loads(report.read_text())
    assert r["num_videos"] == 2 and 0.0 <= r["validity"] <= 1.0
    # the checkpoint records what its cache came from (not each clip's caption), so it still
    # evaluates without the cache
    assert "captions" in meta
    assert pipe.experiment.data.cache_source == {k: v for k, v in meta.items() if k != "captions"}
    cache.unlink()
    assert main(["eval", str(res.checkpoint), "--num-videos", "1", "--steps", "1"]) == 0
    pipe.experiment.data.cache_source = None
    pipe.save_pretrained(tmp_path / "no_source")
    assert main(["eval", str(tmp_path / "no_source"), "--num-videos", "1", "--steps", "1"]) == 2


AE_TINY = ["task=autoencoder", "model={type: VideoAutoencoder, base_channels: 8, "
           "channel_mult: [1, 2, 2], spatial_factor: 4, temporal_factor: 2, latent_channels: 4}",
           "data.moving_shapes.size=16", "data.moving_shapes.num_frames=4",
           "train.batch_size=2", "train.lr=1e-3", "train.warmup_steps=1", "train.progress=false",
           "train.tensorboard=false", "train.log_every=2", "train.bf16=false"]


def _ae_cfg(tmp_path, *extra):
    from vidiff.config import load_config
    return load_config(None, AE_TINY + [f"train.out_dir={tmp_path}", *extra])


def test_autoencoder_training_with_discriminator_resumes_exactly(tmp_path):
    from vidiff.training import Trainer
    extra = ["autoencoder_loss.disc_weight=0.5", "autoencoder_loss.disc_start=2",
             "autoencoder_loss.disc_channels=8", "train.steps=6", "train.ckpt_every=3"]
    a = Trainer(_ae_cfg(tmp_path / "a", *extra))
    ra = a.fit()
    b = Trainer(_ae_cfg(tmp_path / "b", *extra))
    rb1 = b.fit(steps=3)
    b2 = Trainer(_ae_cfg(tmp_path / "b", *extra))
    rb2 = b2.fit()
    assert ra.losses == rb1.losses + rb2.losses
    for k, v in a.task.disc.state_dict().items():
        assert torch.equal(v, b2.task.disc.state_dict()[k]), k
    assert "d_loss" in (tmp_path / "a" / "log.csv").read_text().splitlines()[0]
    ck = ra.checkpoint
    assert (ck / "task.safetensors").is_file()
    ae = load_model(ck)
    assert ae.config.scale_factor != 1.0  # measured on data at save time


def test_freeze_encoder_trains_the_decoder_only(tmp_path):
    """A decoder fine-tune keeps the encoder bit-exact, so latents (and the scale factor)
    made before it stay valid after it."""
    from vidiff.training import Trainer
    base = Trainer(_ae_cfg(tmp_path / "base", "train.steps=2", "train.ckpt_every=2"))
    r0 = base.fit()
    ft = Trainer(_ae_cfg(tmp_path / "ft", "train.steps=3", f"train.init_from={r0.checkpoint}",
                         "autoencoder_loss.freeze_encoder=true"))
    before = {k: v.clone() for k, v in ft.model.state_dict().items()}
    r1 = ft.fit()
    enc = {n for m in ft.model.encoder_modules() for n, _ in m.named_parameters()}
    assert enc
    after = load_model(r1.checkpoint).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    enc_keys = {k for k in before if k.split(".")[0] in ("enc_in", "encoder", "enc_out")}
    assert enc_keys and not changed & enc_keys
    assert any(k.startswith(("dec_in", "decoder", "dec_out")) for k in changed)
    assert load_model(r1.checkpoint).config.scale_factor == pytest.approx(
        load_model(r0.checkpoint).config.scale_factor, rel=1e-6)


def test_kl_term_is_per_pixel_of_the_clip(tmp_path):
    """loss = reconstruction (a per-pixel mean) + kl_weight * KL(sum over the latent) / pixels,
    LDM's balance, so kl_weight=1e-6 does not swamp the reconstruction."""
    from vidiff.training.tasks import AutoencoderTask
    cfg = _ae_cfg(tmp_path, "autoencoder_loss.reconstruction=mse", "autoencoder_loss.kl_weight=0.5")
    from vidiff.training import build_model
    torch.manual_seed(0)
    model = build_model(cfg.model)
    task = AutoencoderTask(cfg, torch.device("cpu"), model)
    x = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    loss = task.loss(model, {"video": x}, torch.Generator().manual_seed(0), 0)
    rec, post = model(x, generator=torch.Generator().manual_seed(0))
    expect = ((rec - x) ** 2).mean() + 0.5 * post.kl() / (3 * 4 * 16 * 16)
    assert torch.allclose(loss, expect, rtol=1e-5)
    assert task.after_step(0)["kl"] == pytest.approx(float(post.kl().detach()), rel=1e-5)


def test_perceptual_loss_loads_local_weights(tmp_path, caplog):
    from safetensors.torch import save_file
    from vidiff.nn.perceptual import LPIPS, load_perceptual
    assert load_perceptual(None) is None
    with pytest.raises(FileNotFoundError):
        load_perceptual(tmp_path / "missing.safetensors")
    ref = LPIPS()
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()
               if k not in ("shift", "scale")}, str(tmp_path / "lpips.safetensors"))
    m = load_perceptual(tmp_path / "lpips.safetensors")
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        m.lin0.weight.abs_()  # LPIPS heads are non-negative
        assert torch.allclose(m(x, x), torch.zeros(2), atol=1e-6)
        assert (m(x, y) != 0).all()
        assert m(x[:, :, None].expand(2, 3, 2, 32, 32), y[:, :, None].expand(2, 3, 2, 32, 32)).shape == (2,)
    save_file({"lin0.weight": torch.zeros(1, 64, 1, 1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="missing"):
        load_perceptual(tmp_path / "bad.safetensors")
    # a run asking for LPIPS without a file trains without it and says so
    import logging
    from vidiff.training import Trainer
    with caplog.at_level(logging.WARNING):
        Trainer(_ae_cfg(tmp_path / "run", "autoencoder_loss.perceptual_weight=1.0", "train.steps=1"))
    assert "perceptual loss is OFF" in caplog.text


def test_cli_autoencode_reports_psnr(tmp_path, real_dir):
    import json
    import subprocess
    import sys
    VideoAutoencoder(CFG).save_pretrained(tmp_path / "ae")
    r = subprocess.run([sys.executable, "-m", "vidiff.cli", "autoencode", str(real_dir / "box.mp4"),
                        "--checkpoint", str(tmp_path / "ae"), "--size", "32", "--max-frames", "12",
                        "--out", str(tmp_path / "rec.mp4")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["frames"] == 12 and rep["latent_shape"] == [4, 3, 8, 8]
    assert rep["psnr"] > 0 and -1 <= rep["ssim"] <= 1
    r = subprocess.run([sys.executable, "-m", "vidiff.cli", "autoencode", str(real_dir / "box.mp4"),
                        "--checkpoint", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("vidiff: error:")
