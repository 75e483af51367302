"""``vidiff data score``: the flow score grows with object speed, camera motion is told apart
on Moving Shapes (with and without a camera pan) and on textured footage moved as a camera
would, and user scorers (a Python function, a shell command) fill columns."""

import cv2
import numpy as np

from vidiff.data.moving_shapes import MovingShapesConfig, generate_clip
from vidiff.data.video_io import write_video
from vidiff.dataproc.pipeline import scan_step, score_step
from vidiff.dataproc.score import opensora_flow, score_clip
from test_dataproc_table import engine, shapes_file


def test_flow_score_is_monotone_in_object_speed(tmp_path):
    scores = []
    for v in (0.5, 1, 2, 3, 4):  # px a frame at 64x64; the same objects and headings
        cfg = MovingShapesConfig(num_frames=8, min_speed=v / 64, max_speed=v / 64)
        per_clip = []
        for seed in range(3):
            p = tmp_path / f"{v}_{seed}.mp4"
            shapes_file(p, cfg, seed)
            per_clip.append(score_clip(str(p), 0, 8, 8.0)["flow"])
        scores.append(np.mean(per_clip))
    assert all(a < b for a, b in zip(scores, scores[1:])), scores


def test_camera_pan_on_moving_shapes_is_classified_right(tmp_path):
    """Default object speeds (1-4 px a frame at 64x64), 2-3 objects, on Moving Shapes' dim
    textured background, which a pan (0.45-1.5 px a frame) shifts without bouncing as a camera
    would; whole clips, no cut. The black canvas has nothing but the objects to see a camera by
    (see docs/data.md)."""
    right, total = {}, {}
    for pan in (0.0, 1.0):
        cfg = MovingShapesConfig(num_frames=12, min_objects=2, max_objects=3,
                                 camera_pan_prob=pan, background="texture")
        for seed in range(24):
            clip = generate_clip(cfg, seed)
            p = write_video(tmp_path / f"{pan}_{seed}.mp4", clip.video, fps=8, lossless=True)
            got = score_clip(str(p), 0, 12, 8.0)
            px, py = clip.camera_pan
            if not pan:
                ok = got["camera_motion"] == "static"
            elif abs(px) > 2 * abs(py):  # content drifting right: the camera pans left
                ok = (got["camera_motion"], got["camera_direction"]) == (
                    "pan", "left" if px > 0 else "right")
            elif abs(py) > 2 * abs(px):
                ok = (got["camera_motion"], got["camera_direction"]) == (
                    "tilt", "up" if py > 0 else "down")
            else:  # diagonal: pan or tilt, by the larger component
                ok = got["camera_motion"] in ("pan", "tilt")
            right[pan], total[pan] = right.get(pan, 0) + ok, total.get(pan, 0) + 1
    assert all(right[k] / total[k] >= 0.95 for k in total), (right, total)


def _camera_video(kind, n=12, size=96):
    rng = np.random.default_rng(1)
    big = cv2.resize(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8), (3 * size, 3 * size),
                     interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(n):
        c = 1.5 * size
        if kind == "zoom_in":  # a shrinking window, enlarged: the content grows
            half = size * (1.0 - 0.03 * i) / 2
            win = big[int(c - half):int(c + half), int(c - half):int(c + half)]
            frames.append(cv2.resize(win, (size, size), interpolation=cv2.INTER_LINEAR))
        else:
            dx, dy = {"pan_left": (-2 * i, 0), "tilt_down": (0, 2 * i),
                      "static": (0, 0)}[kind]  # window moves: content moves the other way
            y, x = int(c - size / 2 + dy), int(c - size / 2 + dx)
            frames.append(big[y:y + size, x:x + size])
    return np.stack(frames)


def test_camera_motion_of_textured_footage(tmp_path):
    expect = {"static": ("static", ""), "pan_left": ("pan", "left"),
              "tilt_down": ("tilt", "down"), "zoom_in": ("zoom", "in")}
    for kind, want in expect.items():
        p = write_video(tmp_path / f"{kind}.mkv", _camera_video(kind), fps=8)
        got = score_clip(str(p), 0, 12, 8.0)
        assert (got["camera_motion"], got["camera_direction"]) == want, (kind, got)


def test_open_sora_scale_flow_is_their_measure_on_a_known_motion(tmp_path):
    """2 px a frame at 96x96 over 10 frames, stretched to 576x320: a pan is 2 * 10 * 6 px in x
    (mean absolute component: half that), a tilt 2 * 10 * 320/96 px in y."""
    want = {"static": 0.0, "pan_left": 60.0, "tilt_down": 100 / 3}
    for kind, value in want.items():
        p = write_video(tmp_path / f"{kind}.mkv", _camera_video(kind, n=21), fps=8)
        assert abs(opensora_flow(str(p), 0, 21) - value) <= 0.1 * value + 0.5, kind


def test_user_scorers_fill_columns_and_a_failing_one_marks_the_row(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    cfg = MovingShapesConfig(size=32, num_frames=6)
    for i in range(2):
        shapes_file(d / f"s{i}.mp4", cfg, i)
    (tmp_path / "hooks.py").write_text(
        "def frames_and_size(row):\n"
        "    return {'twice': 2 * row['num_frames'], 'area': row['width'] * row['height']}\n"
        "def boom(row):\n"
        "    raise RuntimeError('model missing')\n")
    with engine() as e:
        scan_step(d, tmp_path / "scan.csv", e)
        df = score_step(tmp_path / "scan.csv", tmp_path / "s.csv", e, method="none", scorers=(
            ("x", f"{tmp_path}/hooks.py:frames_and_size"), ("nbytes", "wc -c < {path}")))
        bad = score_step(tmp_path / "scan.csv", tmp_path / "b.csv", e, method="none",
                         scorers=(("b", f"{tmp_path}/hooks.py:boom"),))
    assert df["twice"].tolist() == [12, 12] and df["area"].tolist() == [1024, 1024]
    assert df["nbytes"].tolist() == df["bytes"].tolist()
    assert "flow" not in df.columns and "flow_opensora" not in df.columns
    assert not bad["ok"].any() and set(bad["reason"]) == {"scorer_failed"}
    assert bad["detail"].str.contains("RuntimeError: model missing").all()
