"""``vidiff data split``: cuts found where clips were joined, clips within the duration limits,
and the datasets read exactly the time range of a row."""

import numpy as np
import pytest

from vidiff.data import VideoFolderDataset
from vidiff.data.datasets import read_video_list
from vidiff.data.video_io import probe_video, write_video
from vidiff.dataproc.pipeline import scan_step, split_step
from vidiff.dataproc.split import detect_cuts
from test_dataproc_table import engine, textured_segments

LENGTHS = [30, 22, 41, 27]  # frames a segment: cuts at 30, 52, 93
TINTS = [(1.0, 0.3, 0.3), (0.3, 1.0, 0.3), (0.3, 0.3, 1.0), (1.0, 1.0, 0.2)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_cuts_of_joined_clips_are_found_within_one_frame(tmp_path, suffix):
    p = write_video(tmp_path / f"joined{suffix}", textured_segments(LENGTHS), fps=25)
    cuts = detect_cuts(str(p), probe_video(p, with_times=True)["times"])
    truth = np.cumsum(LENGTHS)[:-1]
    assert len(cuts) == len(truth) and np.abs(np.array(cuts) - truth).max() <= 1, cuts


def test_clips_have_start_end_and_the_dataset_reads_that_range(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    video = textured_segments(LENGTHS, tints=TINTS)
    write_video(d / "joined.mp4", video, fps=25)
    bounds = np.cumsum([0, *LENGTHS])
    ref = np.stack([video[a:b].mean(axis=(0, 1, 2)) for a, b in zip(bounds[:-1], bounds[1:])])
    with engine() as e:
        scan_step(d, tmp_path / "scan.csv", e)
        df = split_step(tmp_path / "scan.csv", tmp_path / "clips.csv", e, min_duration=0,
                        max_duration=None)
    assert np.abs(df["start_frame"].to_numpy() - bounds[:-1]).max() <= 1
    assert np.allclose(df["start"], df["start_frame"] / 25) and np.allclose(
        df["end"], df["end_frame"] / 25)
    assert (df["end"].iloc[:-1].to_numpy() == df["start"].iloc[1:].to_numpy()).all()
    assert (df["num_frames"] == df["end_frame"] - df["start_frame"]).all()
    # each row of the table is read from its own segment only: every frame of a 20-frame clip
    # has the mean colour of that segment's tint, not a neighbour's
    ds = VideoFolderDataset(tmp_path / "clips.csv", num_frames=20, size=16)
    assert len(ds) == len(LENGTHS)
    for k in range(len(ds)):
        rgb = ((ds[k]["video"] + 1) * 127.5).mean(dim=(2, 3)).T.numpy()  # (frames, 3)
        nearest = np.linalg.norm(rgb[:, None] - ref[None], axis=-1).argmin(1)
        assert (nearest == k).all(), (k, nearest)
    # limits: scenes shorter than min_duration go, longer than max_duration are cut up
    with engine() as e:
        short = split_step(tmp_path / "scan.csv", tmp_path / "short.csv", e,
                           min_duration=0.5, max_duration=0.6)
    assert ((short["duration"] >= 0.5 - 1e-9) & (short["duration"] <= 0.6 + 1e-9)).all()
    assert set(short["scene"]) == {0, 1, 2, 3} and len(short) == 6
    with engine() as e:  # --cut-dir: each clip its own file, the span now the whole file
        cut = split_step(tmp_path / "scan.csv", tmp_path / "cut.csv", e, min_duration=0,
                         max_duration=None, cut_dir=str(tmp_path / "clips"))
    assert (cut["start_frame"] == 0).all() and (cut["source"] == df["path"]).all()
    assert [probe_video(p)["num_frames"] for p in cut["path"]] == df["num_frames"].tolist()


def test_time_range_cells_are_checked(tmp_path):
    write_video(tmp_path / "a.mp4", textured_segments([20], size=16), fps=10)
    (tmp_path / "l.csv").write_text("path,start,end\na.mp4,0.5,1.5\na.mp4,,0.8\n")
    assert [r[3] for r in read_video_list(tmp_path / "l.csv")] == [(0.5, 1.5), (0.0, 0.8)]
    ds = VideoFolderDataset(tmp_path / "l.csv", num_frames=8, size=8)
    assert [it[2]["num_frames"] for it in ds.items] == [10, 8]
    (tmp_path / "bad.csv").write_text("path,start,end\na.mp4,two,3\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: start must be a time in seconds"):
        read_video_list(tmp_path / "bad.csv")
    (tmp_path / "late.csv").write_text("path,start,end\na.mp4,5,6\n")
    with pytest.raises(Exception, match="no frame between 5 s and 6 s"):
        VideoFolderDataset(tmp_path / "late.csv", num_frames=2, size=8)


def test_megamind_cuts(real_dir):
    p = real_dir / "Megamind.avi"
    times = probe_video(p, with_times=True)["times"]
    # the three shot changes of the clip (largest frame differences: 97->98, 153->154, 199->200)
    assert detect_cuts(str(p), times) == [98, 154, 200]
