"""``caption``, ``trajectories``, ``filter`` and ``vidiff data run``: exact Moving Shapes
captions, user captioners, tracks that follow the objects, Tora's rule, and a training list
that VideoFolderDataset reads."""

import json

import numpy as np
import pandas as pd
import pytest

from vidiff.cli import main
from vidiff.data import VideoFolderDataset
from vidiff.data.moving_shapes import MovingShapesConfig, generate_clip
from vidiff.dataproc.filter import filter_table
from vidiff.dataproc.pipeline import caption_step
from vidiff.dataproc.shapes import write_shapes
from test_dataproc_table import engine


def test_run_captions_tracks_and_feeds_the_dataset(tmp_path, capsys):
    cfg = MovingShapesConfig(size=64, num_frames=16, max_objects=2)
    write_shapes(tmp_path / "v", 4, cfg, seed=10)
    out = tmp_path / "out"
    assert main(["data", "run", str(tmp_path / "v"), "--out", str(out), "--workers", "1",
                 "--no-progress", "--captioner", "shapes", "--points", "6"]) == 0
    paths = json.loads(capsys.readouterr().out)
    table = pd.read_csv(paths["table"])
    assert len(table) == 4 and table["ok"].all() and (table["num_frames"] == 16).all()
    errors, seen = [], []  # per track: median distance (px) of its motion from its object's
    for i, row in table.iterrows():
        clip = generate_clip(cfg, 10 + i)
        assert row["caption"] == clip.caption
        t = np.load(row["trajectory"])
        tracks, vis = t["tracks"], t["visible"]
        assert tracks.shape[1:] == (16, 2) and 1 <= len(tracks) <= 6
        assert (t["frames"] == np.arange(16)).all()
        for k in range(len(tracks)):  # a track starts on an object and moves with it
            x0, y0 = tracks[k, 0]
            near = [np.hypot(*(np.argwhere(m[0])[:, ::-1] + 0.5 - (x0, y0)).T).min()
                    for m in clip.masks]
            j = int(np.argmin(near))
            assert near[j] <= 2.0 and vis[k, :2].all()
            err = np.hypot(*((tracks[k] - tracks[k, 0]) - (clip.trajectories[j] -
                                                          clip.trajectories[j, 0])).T)
            errors.append(np.median(err[vis[k]]))
            seen.append(vis[k].mean())
    assert np.median(errors) < 1.0 and np.mean(np.array(errors) < 2.0) >= 0.8, errors
    assert np.mean(seen) >= 0.7, seen  # tracks mostly last the clip
    ds = VideoFolderDataset(paths["table"], num_frames=8, size=32)
    item = ds[0]
    assert item["caption"] == table["caption"][0] and item["fps"] == 8
    assert item["video"].shape == (3, 8, 32, 32)


def test_user_captioner_and_caption_of_a_cut_clip(tmp_path):
    cfg = MovingShapesConfig(size=32, num_frames=12, max_objects=1)
    write_shapes(tmp_path / "v", 1, cfg)
    clip = generate_clip(cfg, 0)
    rows = pd.DataFrame({"path": [str(tmp_path / "v/shapes_0000.mp4")] * 2, "ok": True,
                         "start_frame": [0, 6], "end_frame": [6, 12], "num_frames": 6})
    rows.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "cap.py").write_text("def cap(row):\n    return f\"frames {row['start_frame']}"
                                     "-{row['end_frame']}\"\n")
    with engine() as e:
        gt = caption_step(tmp_path / "in.csv", tmp_path / "gt.csv", e, "shapes")
        user = caption_step(tmp_path / "in.csv", tmp_path / "u.csv", e, f"{tmp_path}/cap.py:cap")
        cmd = caption_step(tmp_path / "in.csv", tmp_path / "c.csv", e, "echo a clip of")
        with pytest.raises(ValueError, match="cannot import no_such_module"):
            caption_step(tmp_path / "in.csv", tmp_path / "x.csv", e, "no_such_module:fn")
    assert gt["caption"][0] == clip.caption
    d = clip.trajectories[0, 7] - clip.trajectories[0, 6]  # the second clip's own heading
    from vidiff.data.moving_shapes import direction_word
    assert gt["caption"][1].endswith(direction_word(float(d[0]), float(d[1])))
    assert user["caption"].tolist() == ["frames 0-6", "frames 6-12"]
    assert cmd["caption"][0] == f"a clip of {tmp_path}/v/shapes_0000.mp4"


def test_filter_where_camera_and_tora_rule():
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"path": [f"/v/{i}.mp4" for i in range(n)], "ok": True,
                       "height": rng.choice([32, 64, 128], n), "flow": rng.uniform(0, 100, n),
                       "camera_motion": rng.choice(["static", "pan", "zoom"], n)})
    df["flow_opensora"] = df["flow"]  # the rule reads Open-Sora's scale by default
    kept = filter_table(df, tora=True, seed=1)
    assert abs(len(kept) / n - 0.5) < 0.03  # E[1 - s/100] for s ~ U(0, 100)
    assert abs(kept["flow"].mean() - 100 / 3) < 2  # E[s | kept] = 1/3 of the range
    bad = df.assign(ok=df.index % 2 == 0, flow_opensora=df["flow"].where(df.index % 2 == 0))
    kept_bad = filter_table(bad, tora=True, seed=1, keep_bad=True)  # NaN scores of bad rows
    assert (~kept_bad["ok"]).sum() == n // 2  # pass untouched
    with pytest.raises(ValueError, match="no 'flow_opensora' column"):
        filter_table(df.drop(columns="flow_opensora"), tora=True)
    shuffled = filter_table(df.sample(frac=1, random_state=3), tora=True, seed=1)
    assert set(shuffled["path"]) == set(kept["path"])  # row order does not matter
    assert set(filter_table(df, tora=True, seed=2)["path"]) != set(kept["path"])
    some = filter_table(df, where="height >= 64 and flow < 50", camera=["static", "pan"])
    assert (some["height"] >= 64).all() and (some["flow"] < 50).all()
    assert set(some["camera_motion"]) == {"static", "pan"}
    with pytest.raises(ValueError, match="no column 'heigth'"):
        filter_table(df, where="heigth > 3", source="t.csv")
    with pytest.raises(ValueError, match="--camera dolly"):
        filter_table(df, camera=["dolly"])


def test_hook_errors_are_one_line_and_failed_rows_are_retried(tmp_path):
    from vidiff.dataproc.hooks import load_callable

    (tmp_path / "broken.py").write_text("def f(row)\n    return 1\n")
    with pytest.raises(ValueError, match=r"hook .*broken.py:f: cannot load .*SyntaxError.*"
                                         r"line 1") as e:
        load_callable(f"{tmp_path}/broken.py:f")
    assert "\n" not in str(e.value)
    paths = [str(tmp_path / f"{i}.mp4") for i in range(3)]
    pd.DataFrame({"path": paths, "ok": True}).to_csv(tmp_path / "in.csv", index=False)
    flag = tmp_path / "ready"
    (tmp_path / "cap.py").write_text(
        f"import os\ndef cap(row):\n    if not os.path.exists({str(flag)!r}):\n"
        "        raise RuntimeError('model not there yet')\n    return 'a clip'\n")
    with engine() as e:
        first = caption_step(tmp_path / "in.csv", tmp_path / "c.csv", e, f"{tmp_path}/cap.py:cap")
        flag.touch()  # the rerun finds the model: the failed rows are done, not skipped
        second = caption_step(tmp_path / "in.csv", tmp_path / "c.csv", e,
                              f"{tmp_path}/cap.py:cap")
    assert set(first["reason"]) == {"caption_failed"}
    assert second["ok"].all() and (second["caption"] == "a clip").all()


def test_cli_names_out_and_cut_dir_before_any_work(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("path\nx.mp4\n")
    assert main(["data", "split", str(tmp_path / "in.csv"), "--out", str(tmp_path / "o.txt"),
                 "--no-progress"]) != 0
    assert "--out" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert main(["data", "split", str(tmp_path / "in.csv"), "--out", str(tmp_path / "o.csv"),
                 "--no-progress", "--cut-dir", str(tmp_path / "afile" / "d")]) != 0
    assert "--cut-dir" in capsys.readouterr().err
