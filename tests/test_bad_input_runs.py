"""Issue 15, the kinds about checkpoints and runs: the wrong kind of checkpoint (3), non-finite
numbers reaching a file (4), combinations nobody tried (8) and expected stops (9). Each is a
one-line `vidiff: error:` (exit 2, no traceback) or the right result."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from test_training import ROOT, TINY, tiny
from vidiff.cli import main
from vidiff.config import load_config
from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig
from vidiff.training import Trainer


def one_line_error(capsys, code: int, *needles: str) -> str:
    out = capsys.readouterr().err.strip()
    assert code == 2, out
    err = [ln for ln in out.splitlines() if "%|" not in ln]  # progress bars are not errors
    assert len(err) == 1 and err[0].startswith("vidiff: error:"), out
    assert "Traceback" not in out and all(n in err[0] for n in needles), out
    return err[0]


def train_cli(tmp_path, *extra):
    return main(["train", str(ROOT / "configs" / "vdm_tiny.yaml"),
                 *sum([["--set", s] for s in TINY + [f"train.out_dir={tmp_path}", *extra]], [])])


# -- 3. the wrong kind of checkpoint -----------------------------------------------------------
def test_resume_after_changing_the_model_names_what_the_checkpoint_holds(tmp_path, capsys):
    assert train_cli(tmp_path, "train.steps=2", "train.ckpt_every=2") == 0
    capsys.readouterr()
    code = train_cli(tmp_path, "train.steps=4", "model.model_channels=16")
    one_line_error(capsys, code, "step_000002 holds a UNet3D", "model_channels=8 (this recipe: 16)",
                   "new train.out_dir")


def test_an_autoencoder_checkpoint_given_where_a_pipeline_goes(tmp_path, capsys):
    VideoAutoencoder(VideoAutoencoderConfig(base_channels=8)).save_pretrained(tmp_path / "ae")
    code = main(["sample", str(tmp_path / "ae"), "--out", str(tmp_path / "x.mp4")])
    one_line_error(capsys, code, "holds an autoencoder (VideoAutoencoder)", "vidiff autoencode")
    code = main(["sample", "vdm_tiny", "--guide", str(tmp_path / "ae"), "--out",
                 str(tmp_path / "x.mp4")])  # sibling: as a guide model
    one_line_error(capsys, code, "holds an autoencoder")
    code = main(["encode-latents", "vdm_tiny", "--out", str(tmp_path / "z.safetensors")])
    one_line_error(capsys, code, "holds a UNet3D, not an autoencoder")  # sibling: the reverse
    code = train_cli(tmp_path / "run", "autoencoder=vdm_tiny", "train.steps=1")
    one_line_error(capsys, code, "config.autoencoder: vdm_tiny holds a UNet3D")  # sibling


def test_autoencode_takes_a_latent_pipelines_autoencoder(tmp_path, capsys):
    from vidiff.data import MovingShapesConfig, generate_clip, write_video
    clip = generate_clip(MovingShapesConfig(size=64, num_frames=16), 3).video
    write_video(tmp_path / "in.mp4", clip, 8, lossless=True)
    assert main(["autoencode", str(tmp_path / "in.mp4"), "--checkpoint", "lvdm_tiny", "--out",
                 str(tmp_path / "rec.mp4")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["latent_shape"] == [8, 4, 16, 16] and rep["psnr"] > 20, rep  # an untrained one: ~10 dB


# -- 4. non-finite numbers ---------------------------------------------------------------------
def test_a_checkpoint_with_nan_weights_fails_at_the_step_it_went_wrong(tmp_path, capsys):
    from vidiff.pipelines import VideoDiffusionPipeline
    pipe = VideoDiffusionPipeline.from_pretrained("vdm_tiny")
    with torch.no_grad():
        pipe.model.conv_out.bias[1] = float("nan")
    pipe.save_pretrained(tmp_path / "nan")
    code = main(["sample", str(tmp_path / "nan"), "--steps", "3", "--num-videos", "1",
                 "--autoguidance-scale", "0", "--out", str(tmp_path / "x.mp4"), "--quiet"])
    one_line_error(capsys, code, "sampling produced NaN/inf from step 1 of 3",
                   "the denoiser holds 1 non-finite weights (first in conv_out.bias)")
    assert not (tmp_path / "x.mp4").exists()


# -- 8. combinations ---------------------------------------------------------------------------
def test_bf16_autocast_with_the_discriminator_trains_past_disc_start(tmp_path):
    from test_video_ae import _ae_cfg
    cfg = _ae_cfg(tmp_path, "train.bf16=true", "autoencoder_loss.disc_weight=0.5",
                  "autoencoder_loss.disc_start=1", "autoencoder_loss.disc_channels=8",
                  "train.steps=3", "train.ckpt_every=3")
    res = Trainer(cfg).fit()
    assert res.steps == 3 and all(np.isfinite(res.losses))
    assert "d_loss" in (tmp_path / "log.csv").read_text().splitlines()[0]


def test_a_device_this_torch_cannot_use(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["sample", "vdm_tiny", "--device", "cuda", "--out", str(tmp_path / "x.mp4")])
    one_line_error(capsys, code, "device 'cuda': this torch", "has no usable CUDA")
    code = train_cli(tmp_path, "train.device=cuda:1", "train.steps=1")
    one_line_error(capsys, code, "device 'cuda:1'")  # sibling: the recipe's device


def test_class_labels_must_be_real_classes(tmp_path, capsys):
    from test_guidance import _tiny_pipe
    from vidiff.models import UNet3D, UNet3DConfig
    pipe = _tiny_pipe(0)
    net = UNet3D(UNet3DConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                              attention_levels=(1,), head_channels=8, num_classes=2))
    pipe.register_modules(denoiser=net)
    pipe.save_pretrained(tmp_path / "two")
    for label in ("5", "2", "-1"):
        code = main(["sample", str(tmp_path / "two"), "--class-label", label, "--steps", "1",
                     "--out", str(tmp_path / "x.mp4")])
        one_line_error(capsys, code, "class_labels must be in 0..1 (the model has 2 classes; 2 "
                       f"is its unconditional null class), got {label}")
    # sibling: a dataset whose labels the model has no class for (7 colours, 2 classes)
    code = train_cli(tmp_path / "run", "model.num_classes=2", "data.label=first_color",
                     "train.steps=2")
    one_line_error(capsys, code, "the dataset's labels (data.label) must be in 0..1")


def test_resume_with_another_batch_is_refused_unless_asked(tmp_path, capsys):
    assert train_cli(tmp_path, "train.steps=2", "train.ckpt_every=2") == 0
    capsys.readouterr()
    code = train_cli(tmp_path, "train.steps=3", "train.batch_size=2")
    one_line_error(capsys, code, "trained with 4 x 1 x 1 = 4 samples per step",
                   "this run has 2 x 1 x 1 = 2", "train.allow_batch_change=true")
    # the same samples per step another way is the same run
    assert train_cli(tmp_path, "train.steps=3", "train.batch_size=2", "train.grad_accum=2") == 0
    assert train_cli(tmp_path, "train.steps=4", "train.batch_size=1",
                     "train.allow_batch_change=true") == 0


def test_log_has_no_duplicate_steps_after_a_kill(tmp_path, monkeypatch):
    tr = Trainer(tiny(tmp_path, "train.steps=10", "train.ckpt_every=5", "train.log_every=1"))
    tr.fit(steps=5)
    import vidiff.training.trainer as trainer_mod
    real = trainer_mod.save_checkpoint

    def killed(*a, **k):  # the process dies at the next checkpoint, after logging steps 6..10
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer_mod, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        tr.fit(steps=10)
    monkeypatch.setattr(trainer_mod, "save_checkpoint", real)
    Trainer(tiny(tmp_path, "train.steps=10", "train.ckpt_every=5", "train.log_every=1")).fit()
    with open(tmp_path / "log.csv", newline="") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == list(range(1, 11))


@pytest.mark.parametrize("recipe", ["vdm_tiny", "vdm_tiny_guide", "vdm_small", "lvdm_ae_tiny",
                                    "lvdm_ae_small"])
def test_every_self_contained_recipe_trains_with_its_own_options(recipe, tmp_path, real_dir):
    """The recipes' own combinations (bf16, joint images, the discriminator from the start,
    gradient checkpointing ...) for two steps, at a tiny width and size."""
    cfg = load_config(ROOT / "configs" / f"{recipe}.yaml", [
        f"train.out_dir={tmp_path}", "train.steps=2", "train.ckpt_every=2",
        "train.batch_size=2", "train.progress=false", "train.tensorboard=false",
        "train.warmup_steps=1", "train.device=cpu"])
    m = cfg.model
    if m["type"] == "UNet3D":
        m.update(model_channels=8, head_channels=8, num_heads=None)
        cfg.data.moving_shapes.size, cfg.data.moving_shapes.num_frames = 16, 4
    else:
        m["base_channels"] = 8
        cfg.autoencoder_loss["disc_start"] = 1
        cfg.autoencoder_loss["disc_channels"] = 8
        if cfg.data.kind == "video_folder":
            cfg.data.path, cfg.data.size, cfg.data.num_frames = str(real_dir), 32, 8
        else:
            cfg.data.moving_shapes.size, cfg.data.moving_shapes.num_frames = 32, 8
    res = Trainer(cfg).fit()
    assert res.steps == 2 and all(np.isfinite(res.losses))


@pytest.fixture(scope="module")
def latent_cache(tmp_path_factory):
    """A tiny autoencoder of the LVDM recipes' factors (f_t 4, f_s 4, 8 channels) and a cache
    of 64-frame 32x32 clips encoded by it."""
    d = tmp_path_factory.mktemp("latents")
    VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2),
                                            latent_channels=8, spatial_factor=4,
                                            temporal_factor=4)).save_pretrained(d / "ae")
    assert main(["encode-latents", str(d / "ae"), "--out", str(d / "z.safetensors"),
                 "--num-clips", "2", "--frames", "64", "--size", "32", "--batch-size", "2"]) == 0
    return d


@pytest.mark.parametrize("recipe", ["lvdm_tiny", "lvdm_key_tiny", "lvdm_small"])
def test_every_latent_recipe_trains_with_its_own_options(recipe, tmp_path, latent_cache):
    """The latent recipes' mask mixes, key-frame strides, perturbation and bf16, on a cache."""
    cfg = load_config(ROOT / "configs" / f"{recipe}.yaml", [
        f"train.out_dir={tmp_path}", "train.steps=2", "train.ckpt_every=2",
        "train.batch_size=2", "train.progress=false", "train.tensorboard=false",
        "train.warmup_steps=1", "train.device=cpu", f"autoencoder={latent_cache / 'ae'}",
        f"data.path={latent_cache / 'z.safetensors'}", "data.size=32"])
    cfg.model.update(model_channels=8, head_channels=8, num_heads=None)
    res = Trainer(cfg).fit()
    assert res.steps == 2 and all(np.isfinite(res.losses))


def test_nan_latents_never_reach_a_cache(tmp_path, capsys):
    """Sibling of kind 4: an autoencoder with a NaN weight refuses to write the cache."""
    ae = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2),
                                                 spatial_factor=4, temporal_factor=2))
    with torch.no_grad():
        ae.enc_out.bias[0] = float("nan")
    ae.save_pretrained(tmp_path / "ae")
    code = main(["encode-latents", str(tmp_path / "ae"), "--out", str(tmp_path / "z.safetensors"),
                 "--num-clips", "2", "--frames", "8", "--size", "16"])
    one_line_error(capsys, code, "encoding produced NaN/inf latents for clip(s) [0, 1]",
                   "nothing was written")
    assert not (tmp_path / "z.safetensors").exists()


# -- 9. expected stops -------------------------------------------------------------------------
def test_nan_loss_stops_with_one_line(tmp_path, capsys):
    code = train_cli(tmp_path, "train.steps=30", "train.lr=1e30", "train.grad_clip=null",
                     "train.warmup_steps=1", "train.ckpt_every=1000")
    one_line_error(capsys, code, "loss became ", "at step", "nothing was saved after the start",
                   "lower train.lr")
    assert not (tmp_path / "checkpoints").exists()


def test_out_of_memory_says_what_was_asked(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vidiff.cli", "sample", "vdm_tiny", "--num-frames",
                        "200000000", "--num-videos", "1", "--out", str(tmp_path / "x.mp4")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("vidiff: error: out of memory sampling 1 videos of 200000000 frames")
    assert "frames per batch fit here" in err and "vidiff long" in err


def test_out_of_memory_in_training_is_one_line(tmp_path, capsys, monkeypatch):
    """Sibling of kind 9: a training step that runs out of memory says which knob to turn."""
    from vidiff.training.tasks import DiffusionTask

    def oom(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "123456789 bytes")
    monkeypatch.setattr(DiffusionTask, "loss", oom)
    code = train_cli(tmp_path, "train.steps=2")
    one_line_error(capsys, code, "out of memory at training step 1 with train.batch_size 4",
                   "train.grad_accum")
