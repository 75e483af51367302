"""LaMD: the MCD-VAE (a motion latent without a time axis, content only through the image
encoder, KL per element), the 2D motion generator trained and sampled end to end, K-step
sub-sequence sampling, and the i2v / motion-swap / autoencode commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidiff.cli import main
from vidiff.config import load_config
from vidiff.data.video_io import read_video, write_video
from vidiff.models import MCDVAE, MCDVAEConfig, UNet3D, UNet3DConfig
from vidiff.models.video_ae import DiagonalGaussian
from vidiff.pipelines import DiffusionPipeline, ImageToVideoPipeline
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
VAE = dict(num_frames=8, spatial_factor=4, motion_channels=3, base_channels=8,
           channel_mult=(1, 2, 2), motion_width=16)
TRAIN = ["train.log_every=5", "train.progress=false", "train.tensorboard=false",
         "train.ckpt_every=1000", "train.warmup_steps=1", "train.batch_size=2",
         "data.moving_shapes.size=32", "data.moving_shapes.num_frames=8"]


def _randomize(m: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


# -- MCD-VAE -------------------------------------------------------------------------------------
def test_motion_latent_has_no_time_axis():
    m = MCDVAE(MCDVAEConfig(**VAE)).eval()
    x = torch.rand(2, 3, 8, 32, 48) * 2 - 1
    post = m.encode(x)
    assert post.mode().shape == (2, 3, 8, 12)  # (B, d, H / f_s, W / f_s): no frames
    assert m.latents(x).shape == (2, 3, 8, 12)
    assert m.factors == (8, 4)
    rec, _ = m(x)
    assert rec.shape == x.shape
    assert m.content(x[:, :, 0]).shape == (2, 16, 8, 12)
    with pytest.raises(ValueError, match="exactly 8 frames"):
        m.encode(x[:, :, :4])
    with pytest.raises(ValueError, match="needs the first frame"):
        m.decode(post.mode())


def test_decoder_sees_the_first_frame_only_through_the_image_encoder():
    m = MCDVAE(MCDVAEConfig(**VAE)).eval()
    _randomize(m)
    a, b = (torch.rand(1, 3, 8, 32, 32) * 2 - 1 for _ in range(2))
    z = m.latents(b, scaled=False)
    with torch.no_grad():
        swapped = m.decode(z, a[:, :, 0])
        # the same output from A's image-encoder features, with B's frame 0 handed in
        feats = m.content_features(a[:, :, 0])
        m.content_features = lambda image: feats  # type: ignore[method-assign]
        assert torch.equal(m.decode(z, b[:, :, 0]), swapped)
        del m.content_features
        assert not torch.allclose(m.decode(z, b[:, :, 0]), swapped)  # the content matters
        # and the decoder module itself is handed only z and those features
        seen = []
        h = m.decoder.register_forward_pre_hook(lambda mod, args: seen.append(args))
        m(a, sample=False)
        h.remove()
    (z_in, feats_in), = seen
    assert torch.equal(z_in, m.latents(a, scaled=False))
    assert all(torch.equal(f, g) for f, g in zip(feats_in, m.content_features(a[:, :, 0])))


def test_kl_per_element_is_the_closed_form():
    mean = torch.tensor([0.0, 1.0, 0.0, 2.0]).reshape(1, 4, 1, 1)
    logvar = torch.tensor([0.0, 0.0, float(np.log(4.0)), 0.0]).reshape(1, 4, 1, 1)
    post = DiagonalGaussian(torch.cat([mean, logvar], 1))
    want = torch.tensor([0.0, 0.5, 0.5 * (4 - 1 - np.log(4)), 2.0]).reshape(1, 4, 1, 1)
    assert torch.allclose(post.kl_per_element(), want.float(), atol=1e-6)
    assert torch.allclose(post.kl(), want.sum().float(), atol=1e-6)


def test_latent_kl_reduction_adds_beta_times_the_mean_kl(tmp_path):
    from vidiff.training.tasks import build_task

    cfg = load_config(ROOT / "configs" / "lamd_vae_tiny.yaml",
                      TRAIN + [f"train.out_dir={tmp_path}", "autoencoder_loss.kl_weight=0.5"]
                      + [f"model.{k}={list(v) if isinstance(v, tuple) else v}"
                         for k, v in VAE.items()])
    task = build_task(cfg, torch.device("cpu"))
    x = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    g = torch.Generator().manual_seed(0)
    loss = task.loss(task.model, {"video": x}, g, 0)
    rec, post = task.model(x, generator=torch.Generator().manual_seed(0))
    want = torch.nn.functional.mse_loss(rec, x) + 0.5 * post.kl_per_element().mean()
    assert torch.allclose(loss, want, rtol=1e-5)


# -- the motion generator ------------------------------------------------------------------------
def test_content_condition_is_concatenated_and_checked():
    net = UNet3D(UNet3DConfig(in_channels=3, out_channels=3, model_channels=16,
                              channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                              temporal_attention=False, content_channels=5))
    assert "content" in net.accepted_conditions
    z, t = torch.randn(2, 3, 8, 8), torch.rand(2)
    assert net(z, t, content=torch.randn(2, 5, 8, 8)).shape == z.shape
    with pytest.raises(ValueError, match="conditioned on content"):
        net(z, t)
    with pytest.raises(ValueError, match=r"content must be \(B, 5, 8, 8\)"):
        net(z, t, content=torch.randn(2, 4, 8, 8))


@pytest.fixture(scope="module")
def lamd_run(tmp_path_factory):
    """An MCD-VAE and a text-conditioned motion generator on it, a few steps each."""
    d = tmp_path_factory.mktemp("lamd")
    vae = load_config(ROOT / "configs" / "lamd_vae_tiny.yaml",
                      TRAIN + [f"train.out_dir={d / 'vae'}", "train.steps=2"]
                      + [f"model.{k}={list(v) if isinstance(v, tuple) else v}"
                         for k, v in VAE.items()])
    Trainer(vae).fit()
    dmg = load_config(ROOT / "configs" / "lamd_tiny.yaml", TRAIN + [
        f"train.out_dir={d / 'dmg'}", "train.steps=3", f"autoencoder={d / 'vae'}",
        "model.in_channels=3", "model.out_channels=3", "model.model_channels=16",
        "model.num_res_blocks=1", "model.head_channels=16", "model.content_channels=16",
        "text_encoder.max_length=8", "sample.steps=4"])
    Trainer(dmg).fit()
    return d


def test_motion_generator_trains_and_samples_end_to_end(lamd_run):
    pipe = DiffusionPipeline.from_pretrained(lamd_run / "dmg")
    assert isinstance(pipe, ImageToVideoPipeline)
    assert pipe.image_size == 32 and pipe.sample_shape(2, None) == (2, 3, 1, 8, 8)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    g = torch.Generator().manual_seed(0)
    out = pipe(image=img, num_videos=2, generator=g, prompt="a red circle moving up")
    assert out.shape == (2, 8, 32, 32, 3) and out.dtype == np.uint8
    lat = pipe(image=img, num_videos=2, output_type="latent",
               generator=torch.Generator().manual_seed(0))
    assert lat.shape == (2, 3, 1, 8, 8)
    with pytest.raises(ValueError, match="starts from 32x32"):
        pipe(image=img[:16])
    with pytest.raises(ValueError, match="exactly 8 frames"):
        pipe(image=img, num_frames=16)
    with pytest.raises(ValueError, match="needs image="):
        pipe()


def test_k_step_subsequence_with_k_1000_is_the_full_sampler(lamd_run):
    pipe = DiffusionPipeline.from_pretrained(lamd_run / "dmg")
    img = torch.rand(3, 32, 32) * 2 - 1
    kw = dict(image=img, output_type="latent", guidance_scale=0.0, progress=False)
    full = pipe(sampler="ddpm", generator=torch.Generator().manual_seed(1), **kw)
    sub = pipe(sampler="ancestral", num_inference_steps=1000,
               generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(full, sub)
    grid = pipe.schedule.timesteps(1000)
    assert torch.equal(grid, torch.arange(1000, -1, -1).float() / 1000)
    k = pipe.schedule.timesteps(10)  # a sub-sequence of the training steps
    assert torch.allclose(k * 1000, (k * 1000).round())


# -- commands ------------------------------------------------------------------------------------
def test_i2v_command_resizes_with_a_note_and_refuses_a_non_image(lamd_run, tmp_path, capsys,
                                                                   caplog):
    img = tmp_path / "wide.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(img)
    out = tmp_path / "i2v.mp4"
    with caplog.at_level("INFO"):
        assert main(["i2v", str(img), "--checkpoint", str(lamd_run / "dmg"), "--steps", "3",
                     "--num-videos", "2", "--prompt", "a red circle moving left",
                     "--out", str(out), "--quiet"]) == 0
    assert "resized and centre-cropped to 32x32" in caplog.text
    report = json.loads(capsys.readouterr().out)
    clips = sorted(Path(report["clips"]).glob("clip_*.mp4"))
    assert len(clips) == 2 and read_video(clips[0]).shape == (8, 32, 32, 3)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["i2v", str(bad), "--checkpoint", str(lamd_run / "dmg")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vidiff: error: {bad}: not an image") and "\n" not in err


def test_motion_swap_and_autoencode_take_an_mcd_vae(lamd_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for p in (a, b):
        write_video(p, rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), lossless=True)
    out = tmp_path / "swap.mp4"
    assert main(["motion-swap", str(a), str(b), "--checkpoint", str(lamd_run / "dmg"),
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["motion_latent"] == [3, 8, 8] and read_video(out).shape == (8, 32, 32, 3)
    assert Path(report["contact_sheet"]).is_file()
    long = tmp_path / "long.mp4"
    write_video(long, rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), lossless=True)
    assert main(["autoencode", str(long), "--checkpoint", str(lamd_run / "vae"),
                 "--out", str(tmp_path / "rec.mp4")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["frames"] == 16 and rep["latent_shape"] == [3, 2, 8, 8]
    assert read_video(tmp_path / "rec.mp4").shape == (16, 32, 32, 3)
    assert main(["motion-swap", str(a), str(b), "--checkpoint", "lvdm_tiny"]) == 2
    assert "motion-swap needs a motion-content decomposed" in capsys.readouterr().err


def test_shipped_lamd_tiny_animates_an_image():
    pipe = DiffusionPipeline.from_pretrained("lamd_tiny")
    assert isinstance(pipe, ImageToVideoPipeline) and pipe.image_size == 64
    assert pipe.autoencoder.factors == (16, 4)
    from vidiff.data.moving_shapes import MovingShapesConfig, generate_clip
    img = generate_clip(MovingShapesConfig(max_objects=1), 7).video[0]
    out = pipe(image=img, num_videos=2, num_inference_steps=5, output_type="pt",
               generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 16, 64, 64)
    assert "context" in pipe.model.accepted_conditions  # text-image-to-video too


def test_motion_jitter_hides_colour_from_the_motion_encoder_in_training_only():
    m = MCDVAE(MCDVAEConfig(**VAE, motion_jitter=1.0))
    x = torch.rand(3, 3, 8, 32, 32) * 1.5 - 0.5  # x + 1 in [0.5, 2]: ratios are stable
    y = m._jitter(x, torch.Generator().manual_seed(0))
    black = -torch.ones(1, 3, 8, 32, 32)
    assert torch.equal(m._jitter(black, torch.Generator().manual_seed(1)), black)
    for b in range(3):  # each output channel is one input channel times a gain in [0.5, 1]
        used = []
        for i in range(3):
            ratios = [((y[b, i] + 1) / (x[b, j] + 1)) for j in range(3)]
            j = min(range(3), key=lambda k: float(ratios[k].std()))
            assert float(ratios[j].std()) < 1e-5 and 0.5 <= float(ratios[j].mean()) <= 1.0
            used.append(j)
        assert sorted(used) == [0, 1, 2]  # a permutation
    m.eval()
    with torch.no_grad():
        a, _ = m(x, sample=False)
        b, _ = m(x, sample=False)
    assert torch.equal(a, b)  # eval: no jitter
    m.train()
    _, p1 = m(x, sample=False, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(p1.mode(), m.encode(x).mode())
