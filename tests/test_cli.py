"""The command line: one-line errors, and train -> sample -> eval end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidiff.cli import main

ROOT = Path(__file__).resolve().parents[1]
from test_training import TINY  # noqa: E402


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "vidiff.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("args,needle", [
    (["train", "configs/vdm_tiny.yaml", "--set", "train.bogus=1"], "unknown key(s) ['bogus']"),
    (["train", "configs/nope.yaml"], "not found"),
    (["train", "configs/vdm_tiny.yaml", "--set", "diffusion.prediction=score"], "prediction"),
    (["train", "configs/vdm_tiny.yaml", "--set", "model.bogus=1"], "unknown config keys ['bogus']"),
    (["sample", "/no/such/checkpoint"], "no vidiff checkpoint"),
    (["eval", "/no/such/dir"], "no vidiff checkpoint"),
])
def test_bad_input_gives_one_line_error(args, needle, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("vidiff: error:") and needle in err


def test_bad_argument_values():
    r = run_cli("sample", "x", "--steps", "0")
    assert r.returncode == 2 and "--steps must be >= 1" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("sample", "x", "--sampler", "magic")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_train_sample_eval_end_to_end(tmp_path):
    sets = sum([["--set", s] for s in TINY + [f"train.out_dir={tmp_path / 'run'}",
                                              "train.ckpt_every=5"]], [])
    r = run_cli("train", "configs/vdm_tiny.yaml", "--steps", "5", *sets)
    assert r.returncode == 0, r.stderr
    ck = tmp_path / "run" / "checkpoints" / "step_000005"
    assert (ck / "model.safetensors").is_file() and (ck / "pipeline.json").is_file()
    out = tmp_path / "s" / "clip.mp4"
    r = run_cli("sample", str(tmp_path / "run"), "--num-frames", "4", "--steps", "3",
                "--sampler", "dpmpp_2m", "--num-videos", "2", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)
    for k in ("video", "gif", "contact_sheet"):
        assert Path(files[k]).is_file() and Path(files[k]).stat().st_size > 0
    from vidiff.data import read_video
    assert read_video(out).shape[0] == 4
    # eval a folder of videos
    clips = Path(files["clips"])
    assert read_video(clips / "clip_001.mp4").shape == (4, 16, 16, 3)
    r = run_cli("eval", str(clips), "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["num_videos"] == 2 and 0.0 <= m["validity"] <= 1.0


def test_sampler_options_are_checked(tmp_path, capsys):
    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.config import ExperimentConfig, to_dict
    import json as _json
    d = tmp_path / "ck"
    UNet3D(UNet3DConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                        attention_levels=(1,), head_channels=8)).save_pretrained(d)
    exp = ExperimentConfig()
    exp.data.moving_shapes.size, exp.data.moving_shapes.num_frames = 16, 2
    (d / "pipeline.json").write_text(_json.dumps(to_dict(exp)))
    out = str(tmp_path / "o.mp4")
    assert main(["sample", str(d), "--sampler", "pc", "--steps", "2", "--opt", "delta=0.05",
                 "--opt", "corrector_steps=2", "--num-videos", "1", "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(d), "--sampler", "ddim", "--opt", "delta=0.1", "--out", out]) == 2
    assert "takes no option(s) ['delta']" in capsys.readouterr().err


def test_export_bundles_a_guide_model(tmp_path, capsys):
    from test_guidance import _tiny_pipe
    from vidiff.pipelines import VideoDiffusionPipeline

    _tiny_pipe(0).save_pretrained(tmp_path / "good")
    _tiny_pipe(1, channels=16).save_pretrained(tmp_path / "weak")
    assert main(["export", str(tmp_path / "good"), "--out", str(tmp_path / "x"),
                 "--autoguidance-scale", "1"]) == 2  # a weight without a guide model
    assert "needs --guide" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "good"), "--out", str(tmp_path / "x"), "--guide",
                 str(tmp_path / "weak"), "--autoguidance-scale", "1.5", "--sampler", "ddim",
                 "--steps", "3", "--autoguidance-interval", "0.5", "1"]) == 0
    capsys.readouterr()
    pipe = VideoDiffusionPipeline.from_pretrained(tmp_path / "x")
    s = pipe.experiment.sample
    assert (s.sampler, s.steps, s.autoguidance_scale) == ("ddim", 3, 1.5)
    assert s.autoguidance_interval == (0.5, 1.0)
    assert main(["export", str(tmp_path / "good"), "--out", str(tmp_path / "y"), "--guide",
                 str(tmp_path / "weak"), "--autoguidance-interval", "0.9", "0.2"]) == 2
    assert "LO < HI" in capsys.readouterr().err
    assert pipe.guide_model is not None and pipe.guide_model.config.model_channels == 16
    assert main(["sample", str(tmp_path / "x"), "--num-videos", "1", "--out",
                 str(tmp_path / "s.mp4"), "--quiet"]) == 0
    assert main(["sample", str(tmp_path / "good"), "--num-videos", "1", "--steps", "2",
                 "--autoguidance-scale", "1", "--out", str(tmp_path / "t.mp4"), "--quiet"]) == 2
    assert "guide model" in capsys.readouterr().err
