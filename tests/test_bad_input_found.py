"""Issue 15, siblings a tester found by trying hundreds of bad inputs: unwritable outputs,
damaged checkpoint files, components of the wrong kind, odd recipes and odd frames. Each is one
line (`vidiff: error:` or argparse's `vidiff CMD: error:`) or the right result."""

import json
import shutil

import numpy as np
import pytest
import torch

from test_bad_input_runs import one_line_error, train_cli
from vidiff.cli import main
from vidiff.data import export_to_video, read_video


@pytest.fixture
def ck(tmp_path):
    """A copy of the shipped vdm_tiny to damage."""
    from vidiff.training.checkpoint import shipped_checkpoints
    d = tmp_path / "ck"
    shutil.copytree(shipped_checkpoints()["vdm_tiny"], d)
    return d


def sample(out, *extra):
    return main(["sample", "vdm_tiny", "--steps", "1", "--num-videos", "1", "--quiet", "--out",
                 str(out), *extra])


def test_outputs_that_cannot_be_written(tmp_path, capsys):
    (tmp_path / "dir.mp4").mkdir()
    one_line_error(capsys, sample(tmp_path / "dir.mp4"), "dir.mp4: is a folder")
    (tmp_path / "afile").write_text("")
    one_line_error(capsys, sample(tmp_path / "afile" / "x.mp4"), "afile is a file, not a folder")
    one_line_error(capsys, sample(tmp_path / "x.flv"), "cannot write .flv videos; use .mp4")
    code = main(["encode-latents", "vdm_tiny", "--out", str(tmp_path / "z.mp4")])
    one_line_error(capsys, code, "a latent cache is a .safetensors file")
    code = main(["export", "vdm_tiny", "--out", str(tmp_path / "afile")])
    one_line_error(capsys, code, "afile")


@pytest.mark.parametrize("damage,needle", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:99]),
     "model.safetensors: damaged or not a safetensors file"),
    (lambda d: (d / "config.json").write_text('{"_class_name": "UNet3D", "model_'),
     "config.json: damaged, not valid JSON"),
    (lambda d: (d / "config.json").write_text("[1, 2, 3]"),
     "config.json: expected a JSON object, got list"),
    (lambda d: (d / "model_index.json").write_text('{"denoiser": ["model", "."], "guide": "guide"}'),
     "component 'guide' must be [kind, folder], got 'guide'"),
    (lambda d: (d / "model_index.json").write_text('{"denoiser": ["weights", "."]}'),
     "unknown component kind 'weights'"),
    (lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"model_channels": 32', '"model_channels": 16')),
     "model.safetensors does not fit its config.json"),
    (lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"model_channels": 32', '"model_channels": -32')),
     "UNet3D.model_channels must be >= 1, got -32"),
])
def test_damaged_checkpoint_files(ck, tmp_path, capsys, damage, needle):
    damage(ck)
    code = main(["sample", str(ck), "--steps", "1", "--out", str(tmp_path / "x.mp4")])
    one_line_error(capsys, code, needle)


def test_a_guide_folder_holding_an_autoencoder(ck, tmp_path, capsys):
    from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig
    shutil.rmtree(ck / "guide")
    VideoAutoencoder(VideoAutoencoderConfig(base_channels=8)).save_pretrained(ck / "guide")
    code = main(["sample", str(ck), "--steps", "1", "--out", str(tmp_path / "x.mp4")])
    one_line_error(capsys, code, "its guide holds a VideoAutoencoder, not a denoiser")


@pytest.mark.parametrize("override,needle", [
    ("train.betas=[0.9]", "config.train.betas: expected 2 values, got 1"),
    ("model.attention_levels=[7]", "attention_levels: level 7 does not exist"),
])
def test_odd_recipes(tmp_path, capsys, override, needle):
    one_line_error(capsys, train_cli(tmp_path, override, "train.steps=1"), needle)


def test_export_refuses_a_default_the_schedule_cannot_take(tmp_path, capsys):
    code = main(["export", "vdm_tiny", "--out", str(tmp_path / "e"), "--steps", "5000"])
    one_line_error(capsys, code, "--steps 5000", "exceeds the schedule's 1000 steps")


def test_odd_frames(tmp_path):
    p = export_to_video(np.full((4, 16, 16, 3), 100, np.int64), tmp_path / "i.mp4")
    assert abs(int(read_video(p)[0].mean()) - 100) <= 2  # integers are 0..255 values
    with pytest.raises(ValueError, match="no frames to write"):
        export_to_video(np.zeros((0, 16, 16, 3), np.uint8), tmp_path / "z.mp4")
    assert not (tmp_path / "z.mp4").exists()
    with pytest.raises(ValueError, match=r"fps must be in \[0.001, 1000\], got 1e-09"):
        export_to_video(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "f.mp4", fps=1e-9)
    with pytest.raises(ValueError, match="stride >= 1"):
        read_video(p, stride=0, num_frames=2)


def test_autoencode_a_video_smaller_than_the_spatial_factor(tmp_path, capsys):
    export_to_video(np.zeros((8, 2, 2, 3), np.uint8), tmp_path / "tiny.mp4")
    code = main(["autoencode", str(tmp_path / "tiny.mp4"), "--checkpoint", "lvdm_tiny",
                 "--out", str(tmp_path / "r.mp4")])
    one_line_error(capsys, code, "smaller than the autoencoder's spatial factor f_s=4")


def test_a_pipeline_moved_to_a_device_this_torch_cannot_use():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from vidiff.pipelines import VideoDiffusionPipeline
    with pytest.raises(ValueError, match="has no usable CUDA"):
        VideoDiffusionPipeline.from_pretrained("vdm_tiny").to("cuda")


def test_recipe_and_model_mismatches(tmp_path, capsys):
    one_line_error(capsys, train_cli(tmp_path / "a", "model.in_channels=4", "train.steps=1"),
                   "config.model.in_channels is 4 but the data gives 3-channel clips")
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(b"\xff\xfetrain: {}")
    one_line_error(capsys, main(["train", str(recipe)]), "r.yaml: not a UTF-8 text file")
    recipe.write_bytes(b"\xef\xbb\xbfname: bom\n")  # a byte-order mark is fine
    from vidiff.config import load_config
    assert load_config(recipe).name == "bom"


def test_resume_names_only_the_fields_that_changed(tmp_path, capsys):
    assert train_cli(tmp_path, "train.steps=1", "train.ckpt_every=1") == 0
    capsys.readouterr()
    err = one_line_error(capsys, train_cli(tmp_path, "train.steps=2", "model.mask_channel=true"),
                         "mask_channel=False (this recipe: True)")
    assert "channel_mult" not in err and "attention_levels" not in err
