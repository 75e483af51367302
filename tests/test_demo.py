"""The README's main job: `vidiff demo` from the checkpoint shipped in the package.

The foundation issue's quality bar for that checkpoint is validity >= 90% of frames and motion
smoothness within 2x of real Moving Shapes clips. The shipped checkpoint does NOT reach the
validity bar yet (78.9% on 64 samples: roughly one clip in five comes out empty; smoothness 1.78x
real). This test holds it to what it does reach, with room for the spread of 24 samples (this
seed: validity 65%, smoothness 2.06x), so a regression is caught: validity >= 60% and smoothness
within 2.5x of real clips, with the checkpoint's own sampler (ancestral, 50 steps).
"""

import json

from vidiff.cli import DEMO_CHECKPOINT, main
from vidiff.data import read_video


def test_shipped_checkpoint_exists_and_loads():
    from vidiff.pipelines import VideoDiffusionPipeline
    d = DEMO_CHECKPOINT()
    assert (d / "config.json").is_file() and (d / "model.safetensors").is_file()
    pipe = VideoDiffusionPipeline.from_pretrained(d)
    assert pipe.sample_shape(2, None) == (2, 3, 8, 32, 32)


def test_demo_writes_outputs_and_holds_its_quality(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--num-videos", "24", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "validity" in out
    for name in ("demo.mp4", "demo.gif", "demo_sheet.png", "metrics.json"):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0
    assert read_video(tmp_path / "demo.mp4").shape[0] == 8
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["num_videos"] == 24 and m["sampler"] == "ancestral"
    assert m["validity"] >= 0.60, m
    assert m["motion_smoothness"] <= 2.5 * m["real_motion_smoothness"], m
