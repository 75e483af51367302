"""vidiff.dataproc tables: CSV and Parquet read back the same, relative paths resolve, the
journal drops the line a kill cut short; and the helpers the other test_dataproc_* files share
(small synthetic videos made here)."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from vidiff.data.moving_shapes import generate_clip
from vidiff.data.video_io import write_video
from vidiff.dataproc.engine import Engine
from vidiff.dataproc.table import Journal, clip_key, read_table, row_uniform, write_table


def textured_segments(lengths, size=64, seed=0, tints=None):
    """uint8 video: one smooth random texture per segment, drifting 0.7 px a frame, so that
    every segment boundary is a cut; segment k tinted by ``tints[k]`` (RGB gains)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, n in enumerate(lengths):
        base = cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8),
                          (size * 2, size * 2), interpolation=cv2.INTER_CUBIC)
        if tints is not None:
            base = np.clip(base * np.asarray(tints[k]), 0, 255).astype(np.uint8)
        out += [base[int(i * 0.7):int(i * 0.7) + size, int(i * 0.7):int(i * 0.7) + size]
                for i in range(n)]
    return np.stack(out)


def shapes_file(path, cfg, seed, frames=None):
    """A Moving Shapes clip written losslessly (its first ``frames`` frames); the clip."""
    clip = generate_clip(cfg, seed)
    write_video(path, clip.video[:frames], fps=clip.fps, lossless=True)
    return clip


def engine(workers=1):
    return Engine("local", workers, progress=False)


def test_csv_and_parquet_tables_read_back_the_same(tmp_path):
    (tmp_path / "v").mkdir()
    df = pd.DataFrame({"path": ["v/a.mp4", "v/b.mp4"], "ok": [True, False],
                       "reason": [None, "empty"], "flow": [1.5, float("nan")],
                       "num_frames": [10, 0]})
    write_table(df, tmp_path / "t.csv")
    write_table(df, tmp_path / "t.parquet")
    a, b = read_table(tmp_path / "t.csv"), read_table(tmp_path / "t.parquet")
    assert a["path"].tolist() == [str(tmp_path / "v/a.mp4"), str(tmp_path / "v/b.mp4")]
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    with pytest.raises(ValueError, match="needs a 'path' column"):
        write_table(df.drop(columns="path"), tmp_path / "n.csv")
        read_table(tmp_path / "n.csv")
    with pytest.raises(ValueError, match=r"t\.txt: a table is"):
        read_table(tmp_path / "t.txt")


def test_journal_drops_a_cut_line_and_a_changed_input(tmp_path):
    out = tmp_path / "o.csv"
    j = Journal(out, "fp1")
    assert j.load() == {}
    j.open()
    j.add(0, [{"a": 1}])
    j.add(2, [{"a": 3}, {"a": 4}])
    j.close()
    with open(j.path, "a") as f:
        f.write('{"key": 1, "rows": [{"a"')  # a kill mid-line
    assert Journal(out, "fp1").load() == {0: [{"a": 1}], 2: [{"a": 3}, {"a": 4}]}
    assert json.loads(j.path.read_text().splitlines()[-1])["key"] == 2  # the cut line is gone
    assert Journal(out, "fp2").load() == {}  # other inputs or options: start over


def test_row_draws_depend_on_the_clip_not_the_order():
    rows = [{"path": f"/v/{i}.mp4", "start_frame": i, "end_frame": i + 5} for i in range(50)]
    u = [row_uniform(3, clip_key(r)) for r in rows]
    assert [row_uniform(3, clip_key(r)) for r in rows[::-1]] == u[::-1]
    assert 0.3 < np.mean(u) < 0.7 and u != [row_uniform(4, clip_key(r)) for r in rows]


def test_journal_line_without_its_newline_is_redone(tmp_path):
    out = tmp_path / "o.csv"
    j = Journal(out, "fp")
    j.load()
    j.open()
    j.add(0, [{"a": 1}])
    j.close()
    with open(j.path, "a") as f:
        f.write('{"key": 1, "rows": [{"a": 2}]}')  # whole, but killed before its "\n"
    j2 = Journal(out, "fp")
    assert j2.load() == {0: [{"a": 1}]}
    j2.open()
    j2.add(1, [{"a": 2}])
    j2.close()
    assert Journal(out, "fp").load() == {0: [{"a": 1}], 1: [{"a": 2}]}


def test_clip_key_relative_to_the_table_folder_survives_a_move(tmp_path):
    a = {"path": "/data/set/v/a.mp4", "start_frame": 0, "end_frame": 8}
    b = {**a, "path": "/moved/elsewhere/v/a.mp4"}
    assert clip_key(a, "/data/set") == clip_key(b, "/moved/elsewhere") == "v/a.mp4|0|8"
    assert clip_key(a, "/other") == "/data/set/v/a.mp4|0|8"  # outside the folder: absolute
