"""Tora end to end on a tiny pixel-space ST-DiT: a trajectory autoencoder trained on flow images,
the trajectory-controlled model trained with it (the checkpoint carries it), and the
TrajectoryPipeline sampling from trajectory files with a first frame kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff.config import load_config
from vidiff.pipelines import DiffusionPipeline, TrajectoryPipeline, load_trajectories
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["train.progress=false", "train.tensorboard=false", "train.log_every=1",
          "train.batch_size=2", "data.moving_shapes.size=16",
          "data.moving_shapes.num_frames=4", "data.moving_shapes.max_objects=1"]


@pytest.fixture(scope="module")
def tora_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("tora")
    ae = load_config(ROOT / "configs" / "lvdm_ae_tiny.yaml", COMMON + [
        f"train.out_dir={d / 'traj_ae'}", "train.steps=2", "data.kind=trajectory_flow",
        "model.base_channels=8", "model.channel_mult=[1]", "model.latent_channels=4",
        "model.patch_size=1", "model.spatial_factor=1", "model.temporal_factor=1",
        "model.output_stage=0", "data.trajectory={max_flow: 2.0, sigma: 1.0}"])
    Trainer(ae).fit()
    cfg = load_config(ROOT / "configs" / "vdm_tiny.yaml", COMMON + [
        f"train.out_dir={d / 'tora'}", "train.steps=3", "data.flow=true",
        "diffusion.schedule.kind=rectified_flow", "diffusion.prediction=flow",
        "diffusion.weighting=uniform", "diffusion.clip=null",
        "diffusion.frame_masks={none: 0.5, first: 0.5}",
        f"trajectory={{autoencoder: {d / 'traj_ae'}, mode: sparse, max_flow: 2.0, sigma: 1.0}}",
        "sample.sampler=euler", "sample.steps=3", "sample.num_frames=4"])
    cfg.model = {"type": "STDiT", "in_channels": 3, "hidden_size": 32, "depth": 1,
                 "num_heads": 2, "patch_size": 4, "motion_channels": 4}
    Trainer(cfg).fit()
    return d


def test_the_checkpoint_carries_the_trajectory_autoencoder(tora_run):
    pipe = DiffusionPipeline.from_pretrained(tora_run / "tora")
    assert isinstance(pipe, TrajectoryPipeline)
    assert pipe.components["trajectory_autoencoder"] is not None
    assert pipe.clip_size == (4, 16)


def test_sampling_from_files_keeps_the_first_frame(tora_run, tmp_path):
    pipe = DiffusionPipeline.from_pretrained(tora_run / "tora")
    a, b = tmp_path / "a.txt", tmp_path / "b.json"
    a.write_text("32,32\n64,32\n96,32\n128,32\n160,32\n192,32\n224,32\n")
    b.write_text(json.dumps({"canvas": [16, 16], "trajectories": [[[2, 2], [4, 4]]]}))
    paths = load_trajectories([a, b], 4, (16, 16))
    assert paths.shape == (2, 4, 2)
    assert np.allclose(paths[0, 0], (2, 2)) and np.allclose(paths[0, -1], (14, 2))
    img = torch.rand(3, 16, 16) * 2 - 1
    out = pipe(trajectories=paths, image=img, num_videos=2, output_type="pt",
               generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 4, 16, 16)
    assert torch.allclose(out[:, :, 0], img.clamp(-1, 1).expand(2, -1, -1, -1), atol=1e-5)
    other = pipe(trajectories=paths[:1], num_videos=1, output_type="pt",
                 generator=torch.Generator().manual_seed(0))
    assert other.shape == (1, 3, 4, 16, 16)
    with pytest.raises(ValueError, match="trajectory-controlled: pass trajectories"):
        pipe(num_videos=1)
    with pytest.raises(ValueError, match="makes 16x16 frames"):
        pipe(trajectories=paths, image=torch.rand(3, 8, 8))


def test_sample_command_with_trajectory_files_and_a_first_frame(tora_run, tmp_path, capsys):
    from PIL import Image

    from vidiff.cli import main

    a = tmp_path / "a.txt"
    a.write_text("32,32\n128,64\n224,224\n")
    img = tmp_path / "first.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(img)
    out = tmp_path / "tora.mp4"
    assert main(["sample", str(tora_run / "tora"), "--trajectory", str(a), "--trajectory",
                 str(a), "--image", str(img), "--num-videos", "2", "--out", str(out),
                 "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert Path(report["paths"]).is_file() and Path(report["video"]).is_file()
    bad = tmp_path / "bad.txt"
    bad.write_text("10,10\n300,10\n")
    assert main(["sample", str(tora_run / "tora"), "--trajectory", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "vidiff: error: trajectory bad.txt: point 2 (300, 10) is outside the " \
                  "256x256 canvas"
    assert main(["sample", "vdm_tiny", "--trajectory", str(a)]) == 2
    assert "not trajectory-controlled" in capsys.readouterr().err


def test_test_paths_and_the_eval_reports_trajectory_error(tora_run, capsys):
    from vidiff.cli import main
    from vidiff.evaluation.trajectory_eval import path_errors, test_path, trajectory_requests

    rng = np.random.default_rng(0)
    for kind in ("circle", "zigzag", "spiral"):
        p = test_path(kind, 16, 64, rng)
        assert p.shape == (16, 2) and p.min() >= 64 / 5 - 1e-4 and p.max() <= 64 - 64 / 5
        assert np.linalg.norm(np.diff(p, axis=0), axis=1).max() < 20
    # a clip whose object follows the path exactly has zero error
    from vidiff.data.moving_shapes import render_frame
    path = test_path("circle", 8, 64, rng)
    video = np.stack([render_frame(64, [("red", "square", 6.0, x, y)]) for x, y in path])
    assert np.allclose(path_errors(video, "red", path), 0, atol=0.6)
    assert np.isnan(path_errors(video, "blue", path)).all()
    assert [r[2] for r in trajectory_requests(4, 8, 64)] == ["circle", "zigzag", "spiral",
                                                             "circle"]
    assert main(["eval", str(tora_run / "tora"), "--num-videos", "3", "--steps", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    t = report["trajectory_control"]
    assert len(t["per_frame_px"]) == 4 and set(t["per_family_px"]) <= {"circle", "zigzag",
                                                                        "spiral"}
    assert len(t["per_clip_px"]) == 3


def test_held_out_paths_score_a_model_without_trajectory_control(tora_run, capsys):
    """Tora's no-adapter baseline: a text model gets the requests' prompts only and is scored
    on the same paths; a model with neither text nor trajectories is refused."""
    from vidiff.cli import main

    assert main(["eval", "t2v_tiny", "--held-out-paths", "--num-videos", "2", "--steps",
                 "2"]) == 0
    t = json.loads(capsys.readouterr().out)["trajectory_control"]
    assert len(t["per_clip_px"]) == 2 and 0 <= t["missing"] <= 1
    assert main(["eval", "vdm_tiny", "--held-out-paths", "--num-videos", "2"]) == 2
    assert "--held-out-paths needs a model with trajectory control or text prompts" in \
        capsys.readouterr().err


def test_a_list_of_trajectory_sets_with_one_image_sets_the_batch(tora_run):
    pipe = DiffusionPipeline.from_pretrained(tora_run / "tora")
    one = np.stack([np.linspace(2, 14, 4), np.full(4, 8.0)], 1)[None].astype(np.float32)
    out = pipe(trajectories=[one, one[:, ::-1].copy()], image=torch.rand(3, 16, 16) * 2 - 1,
               output_type="pt", generator=torch.Generator().manual_seed(0))
    assert out.shape[0] == 2
    with pytest.raises(ValueError, match="3 first frames for 2 videos"):
        pipe(trajectories=one, image=torch.rand(3, 3, 16, 16), num_videos=2)
