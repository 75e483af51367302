"""What VideoFolderDataset reads of a ``vidiff data`` table: the exact frame span of each row
(also on a variable-rate file, from ``start_frame`` / ``end_frame`` or from ``start`` / ``end``
alone), rows with ``ok`` false left out, and each row's point tracks mapped onto the item."""

import numpy as np

from vidiff.data import VideoFolderDataset
from vidiff.data.moving_shapes import MovingShapesConfig
from vidiff.data.video_io import probe_video
from vidiff.dataproc.pipeline import scan_step, split_step, trajectories_step
from vidiff.dataproc.shapes import write_shapes
from test_bad_input_io import VFR_MS, _encode
from test_dataproc_table import engine


def test_dataset_spans_are_the_table_s_frames_even_at_a_variable_rate(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    gray = np.repeat(np.arange(20, dtype=np.uint8)[:, None, None, None] * 12, 3, -1)
    _encode(d / "vfr.mp4", np.ascontiguousarray(np.broadcast_to(gray, (20, 32, 32, 3))),
            VFR_MS)  # 10 frames 0.1 s apart, then 10 frames 1 s apart
    assert probe_video(d / "vfr.mp4")["vfr"]
    with engine() as e:
        scan_step(d, tmp_path / "scan.csv", e)
        df = split_step(tmp_path / "scan.csv", tmp_path / "clips.csv", e, min_duration=0,
                        max_duration=0.35)
    assert len(df) >= 8 and (df["start_frame"].iloc[1:] < 10).any()  # short clips at 10 fps
    want = list(zip(df["start_frame"], df["num_frames"]))
    times_only = tmp_path / "times.csv"  # no frame columns: the times are snapped
    df.drop(columns=["start_frame", "end_frame"]).to_csv(times_only, index=False)
    for table in (tmp_path / "clips.csv", times_only):
        ds = VideoFolderDataset(table, num_frames=1, size=8)
        assert [(it[2]["offset"], it[2]["num_frames"]) for it in ds.items] == want, table
    for k in range(len(ds)):  # each item shows a frame of its own span
        shade = int(round((ds[k]["video"].mean().item() + 1) * 127.5 / 12))
        a, n = want[k]
        assert a <= shade < a + n, (k, shade, want[k])


def test_dataset_returns_a_row_s_tracks_on_its_frames_and_skips_bad_rows(tmp_path):
    cfg = MovingShapesConfig(size=64, num_frames=12, min_objects=2, max_objects=2)
    write_shapes(tmp_path / "v", 2, cfg, seed=3)
    with engine() as e:
        scan_step(tmp_path / "v", tmp_path / "scan.csv", e)
        df = trajectories_step(tmp_path / "scan.csv", tmp_path / "t.csv", e, num_points=6)
    df.loc[1, "ok"] = False
    df.to_csv(tmp_path / "t.csv", index=False)
    ds = VideoFolderDataset(tmp_path / "t.csv", num_frames=6, size=32, frame_stride=2)
    assert len(ds) == 1 and ds.items[0][0].name == "shapes_0000.mp4"
    item = ds[0]
    t = np.load(df["trajectory"][0])
    tracks, vis = item["trajectories"].numpy(), item["trajectory_visible"].numpy()
    assert tracks.shape == (len(t["tracks"]), 6, 2) and vis.shape == tracks.shape[:2]
    # the sampled frames are every second frame from some start: find it from the points
    starts = [s for s in range(0, 2) if np.allclose(
        tracks[vis], ((t["tracks"][:, s:s + 12:2] + 0.5) * 0.5 - 0.5)[vis], atol=1e-5)]
    assert len(starts) == 1 and vis.mean() > 0.7, starts
    video = ((item["video"] + 1) * 127.5).numpy()  # (3, F, 32, 32)
    on = [video[:, f, max(0, y - 1):y + 2, max(0, x - 1):x + 2].max()
          for (k, f) in np.argwhere(vis) for x, y in [tracks[k, f].round().astype(int)]]
    assert np.mean(np.array(on) > 80) >= 0.9  # the points lie on (the edges of) the objects
