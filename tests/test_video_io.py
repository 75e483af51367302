import numpy as np
import pytest
import torch

from vidiff.data import (ImageFolderDataset, VideoFolderDataset, VideoReadError, export_to_gif,
                         read_video, write_video)
from vidiff.data.video_io import probe_video


@pytest.mark.parametrize("name", ["box.mp4", "tree.avi", "Megamind.avi"])
def test_decode_real_footage(real_dir, name):
    v = read_video(real_dir / name, num_frames=5, stride=2)
    assert v.dtype == np.uint8 and v.ndim == 4 and v.shape[0] == 5 and v.shape[-1] == 3
    assert probe_video(real_dir / name)["fps"] > 0


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webm"])
def test_write_read_roundtrip(tmp_path, suffix):
    frames = np.zeros((6, 32, 48, 3), np.uint8)
    for f in range(6):  # a moving block: compressible and checkable
        frames[f, 8:20, 4 + 4 * f:16 + 4 * f] = (200, 50, 30)
    p = write_video(tmp_path / f"a{suffix}", frames, fps=8)
    back = read_video(p)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6


@pytest.mark.parametrize("suffix,lossless", [(".mp4", True), (".mkv", False)])
def test_lossless(tmp_path, suffix, lossless):
    frames = np.random.default_rng(1).integers(0, 256, (3, 17, 9, 3), dtype=np.uint8)
    back = read_video(write_video(tmp_path / f"l{suffix}", frames, lossless=lossless))
    assert np.array_equal(back, frames)


def test_torch_tensor_and_gif_export(tmp_path):
    x = torch.rand(3, 4, 16, 16) * 2 - 1
    p = export_to_gif(x, tmp_path / "x.gif", fps=4)
    assert read_video(p).shape == (4, 16, 16, 3)
    with pytest.raises(ValueError):
        export_to_gif(x, tmp_path / "x.mp4")


def _corrupt_copies(real_dir, d):
    d.mkdir()
    good = real_dir / "box.mp4"
    (d / "good.mp4").write_bytes(good.read_bytes())
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 5])
    return d


def test_corrupt_files_clear_error(real_dir, tmp_path):
    d = _corrupt_copies(real_dir, tmp_path / "v")
    for f in ("empty.mp4", "garbage.avi"):
        with pytest.raises(VideoReadError, match=f):
            read_video(d / f)
    with pytest.raises(VideoReadError):
        VideoFolderDataset(d, num_frames=4, size=32, on_error="error")


def test_corrupt_files_skipped_and_counted(real_dir, tmp_path):
    d = _corrupt_copies(real_dir, tmp_path / "v")
    ds = VideoFolderDataset(d, num_frames=4, size=32, frame_stride=2, on_error="skip")
    assert len(ds.skipped) >= 2  # empty and garbage found at construction
    for i in range(len(ds) * 2):  # a whole "epoch" twice: never a crash
        it = ds[i % len(ds)]
        assert it["video"].shape == (3, 4, 32, 32)
    assert len(ds.skipped) >= 2


def test_overstated_frame_count_is_handled(real_dir):
    """tree.avi's header claims 444 frames, only 68 decode: clips must still come out."""
    ds = VideoFolderDataset(real_dir, num_frames=8, size=32)
    j = [p.name for p, _, _ in ds.items].index("tree.avi")
    for seed in range(4):
        ds.seed = seed
        assert ds[j]["video"].shape == (3, 8, 32, 32)
    assert ds.items[j][2]["num_frames"] == 68


def test_video_folder_and_csv(real_dir, tmp_path):
    ds = VideoFolderDataset(real_dir, num_frames=8, size=64, target_fps=5)
    assert len(ds) == 3
    x = ds[0]["video"]
    assert x.shape == (3, 8, 64, 64) and -1 <= x.min() and x.max() <= 1
    csv = tmp_path / "list.csv"
    csv.write_text(f"path,caption\n{real_dir / 'box.mp4'},a box\n{real_dir / 'tree.avi'},a tree\n")
    ds2 = VideoFolderDataset(csv, num_frames=4, size=32)
    assert len(ds2) == 2 and ds2[0]["caption"] == "a box"


def test_image_folder(tmp_path):
    from PIL import Image
    (tmp_path / "im").mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "im" / "a.png")
    (tmp_path / "im" / "b.jpg").write_bytes(b"not an image")
    ds = ImageFolderDataset(tmp_path / "im", size=32, on_error="skip")
    assert ds[0]["video"].shape == (3, 32, 32) and ds[1]["video"].shape == (3, 32, 32)
    assert len(ds.skipped) == 1
