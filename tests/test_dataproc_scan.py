"""``vidiff data scan``: one row per file, broken files flagged with the reason, never a crash."""

import json
import os

import av
import numpy as np
import pandas as pd

from vidiff.cli import main
from vidiff.data.video_io import write_video
from vidiff.dataproc.pipeline import scan_step
from test_dataproc_table import engine, textured_segments


def _audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _broken_folder(d):
    v = textured_segments([24], size=32)
    good = write_video(d / "good.mp4", v, fps=8)
    write_video(d / "good.mkv", v, fps=8)
    data = good.read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) never written
    mkv = (d / "good.mkv").read_bytes()
    (d / "cut.mkv").write_bytes(mkv[: int(len(mkv) * 0.7)])  # frames missing at the end
    write_video(d / "good.avi", v, fps=8)
    avi = (d / "good.avi").read_bytes()
    (d / "cut.avi").write_bytes(avi[: int(len(avi) * 0.6)])
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mov").write_bytes(os.urandom(4000))
    (d / "notes.mp4").write_text("not a video\n")
    _audio_only(d / "voice.mp4")
    (d / "readme.txt").write_text("skipped: not a video suffix")
    return {"good.mp4": None, "good.mkv": None, "good.avi": None, "cut.mp4": "truncated",
            "cut.mkv": "truncated", "cut.avi": "truncated", "empty.mp4": "empty",
            "garbage.mov": "unreadable", "notes.mp4": "unreadable", "voice.mp4": "audio_only"}


def test_scan_flags_broken_empty_audio_only_and_truncated_files(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    expected = _broken_folder(d)
    with engine() as e:
        df = scan_step(d, tmp_path / "scan.csv", e)
    got = {os.path.basename(p): r for p, r in zip(df["path"], df.to_dict("records"))}
    assert set(got) == set(expected)
    for name, reason in expected.items():
        row = got[name]
        if reason is None:
            assert row["ok"] and row["num_frames"] == 24 and row["fps"] == 8
            assert (row["width"], row["height"], row["duration"]) == (32, 32, 3.0)
            assert row["codec"] in ("h264", "ffv1", "mpeg4") and not row["vfr"]
        else:
            assert not row["ok"] and row["reason"] == reason, (name, row)
            assert isinstance(row["detail"], str) and row["detail"]
    assert got["voice.mp4"]["has_audio"]


def test_scan_cli_writes_parquet_and_resumes(tmp_path, capsys):
    d = tmp_path / "videos"
    d.mkdir()
    write_video(d / "a.mp4", textured_segments([10], size=32), fps=10)
    (d / "b.mp4").write_bytes(b"")
    out = tmp_path / "scan.parquet"
    args = ["data", "scan", str(d), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "rows": 2, "not_ok": 1}
    first = pd.read_parquet(out)
    assert main(args) == 0  # everything is in the journal: the same table again
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)
    assert main(["data", "scan", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "nope: no such" in capsys.readouterr().err
