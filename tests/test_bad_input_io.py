"""Bad input at the file boundary: container metadata (variable frame rate, display matrix,
pixel aspect), NaN frames, spreadsheet CSV lists, one list of file types, lossy GIF palettes.
Every input is built here, small."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidiff.cli import main
from vidiff.data import VideoFolderDataset, VideoReadError, VideoWriter, export_to_video
from vidiff.data.sample_outputs import write_sample_outputs
from vidiff.data.video_io import (READABLE_SUFFIXES, WRITABLE_SUFFIXES, probe_video, read_video,
                                  to_uint8, write_video)


def _encode(path, frames, pts_ms, *, rotation=0, hflip=False, sar=None):
    """H.264 mp4 of uint8 frames at the given presentation times (ms), with an optional
    display matrix and pixel aspect."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"crf": "10"}
        if sar:
            s.codec_context.sample_aspect_ratio = sar
        if rotation or hflip:
            s.set_display_rotation(rotation, hflip=hflip)
        for fr, t in zip(frames, pts_ms):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 1000)
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def _psnr(a, b):
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def _small_real_frames(real_dir, n=12, size=(80, 60)):
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR))
                     for f in read_video(real_dir / "box.mp4", num_frames=n, stride=6)])


# -- 1. container metadata ----------------------------------------------------------------------
VFR_MS = [100 * i for i in range(10)] + [900 + 1000 * i for i in range(1, 11)]


def test_variable_frame_rate_clips_are_sampled_by_time(tmp_path):
    gray = np.repeat(np.arange(20, dtype=np.uint8)[:, None, None, None] * 12, 3, -1)
    d = tmp_path / "v"
    d.mkdir()
    _encode(d / "vfr.mp4", np.broadcast_to(gray, (20, 32, 32, 3)), VFR_MS)
    info = probe_video(d / "vfr.mp4")
    assert info["vfr"] and info["num_frames"] == 20
    assert info["fps"] == pytest.approx(19 / 10.9)
    times = np.array(VFR_MS) / 1000
    for seed in range(8):
        ds = VideoFolderDataset(d, num_frames=4, size=16, target_fps=2, seed=seed)
        it = ds[0]
        assert it["fps"] == 2.0
        got = ((it["video"].mean((0, 2, 3)) + 1) * 127.5 / 12).round().int().tolist()
        on_screen = [int(np.searchsorted(times, times[got[0]] + 0.5 * k + 1e-6) - 1)
                     for k in range(4)]
        assert got == on_screen, (seed, got)


@pytest.mark.parametrize("rotation,hflip", [(-90, False), (90, False), (180, False),
                                            (90, True), (0, True)])
def test_display_matrix_is_applied(tmp_path, rotation, hflip):
    upright = np.zeros((32, 16, 3), np.uint8)  # a portrait picture, red block at its top left
    upright[:8, :6] = (255, 0, 0)
    # stored so that turning it by `rotation` (counter-clockwise) and mirroring shows `upright`
    stored = np.rot90(upright[:, ::-1] if hflip else upright, -rotation // 90)
    p = _encode(tmp_path / "phone.mp4", np.stack([stored] * 3), [0, 100, 200],
                rotation=rotation, hflip=hflip)
    back = read_video(p)
    assert back.shape == (3, 32, 16, 3)
    assert np.abs(back[0].astype(int) - upright).mean() < 8
    info = probe_video(p)
    assert (info["width"], info["height"], info["mirrored"]) == (16, 32, hflip)
    assert info["rotation"] == rotation


def test_portrait_phone_video_is_upright(tmp_path):
    """A phone held upright stores a landscape picture and a clockwise quarter turn (-90)."""
    upright = np.zeros((32, 16, 3), np.uint8)
    upright[:8] = (0, 0, 255)  # blue sky on top
    p = _encode(tmp_path / "IMG_0001.mp4", np.stack([np.rot90(upright)] * 3), [0, 33, 66],
                rotation=-90)
    assert probe_video(p)["rotation"] == -90
    assert read_video(p).shape == (3, 32, 16, 3)
    assert read_video(p)[0, :8, :, 2].mean() > 200 and read_video(p)[0, 8:, :, 2].mean() < 40


def test_non_square_pixels_are_honoured(tmp_path):
    frames = np.zeros((2, 16, 32, 3), np.uint8)
    frames[:, :, :16] = 255  # the left half white
    p = _encode(tmp_path / "anamorphic.mp4", frames, [0, 100], sar=Fraction(2, 1))
    back = read_video(p)
    assert back.shape == (2, 16, 64, 3) and probe_video(p)["sar"] == 2.0
    assert back[0, :, :30].mean() > 240 and back[0, :, 34:].mean() < 15


def test_dropped_frames_give_the_real_rate(real_dir):
    """tree.avi's header says 15 fps; 68 of its 444 frame slots hold frames, over 29.6 s."""
    info = probe_video(real_dir / "tree.avi")
    assert info["vfr"] and info["fps"] == pytest.approx(67 / (443 / 15), rel=1e-3)
    ds = VideoFolderDataset(real_dir, num_frames=4, size=16, target_fps=1)
    j = [p.name for p, _, _ in ds.items].index("tree.avi")
    assert ds[j]["fps"] == 1.0


# -- 4. non-finite numbers reaching a file --------------------------------------------------------
def test_nan_frames_are_refused(tmp_path):
    x = torch.zeros(3, 4, 8, 8)
    x[0, 2, 1, 1] = float("nan")
    with pytest.raises(ValueError) as e:
        export_to_video(x, tmp_path / "nan.mp4")
    assert str(e.value) == ("NaN or infinite values in frame 2: refusing to write them (they "
                            "would be saved as black or white pixels)")
    assert not (tmp_path / "nan.mp4").exists()
    a = np.zeros((4, 8, 8, 3), np.float32)
    a[1, 0, 0], a[3] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"^NaN or infinite values in frame 1, frame 3: "):
        write_video(tmp_path / "nan.gif", a)


def test_nan_in_a_later_chunk_names_the_frame_of_the_file(tmp_path):
    with pytest.raises(ValueError, match="in frame 5:"):
        with VideoWriter(tmp_path / "long.mkv", fps=4) as w:
            w.write(np.zeros((4, 8, 8, 3), np.float32))
            bad = np.zeros((3, 8, 8, 3), np.float32)
            bad[1, 2, 2, 0] = np.inf  # was written white without a word
            w.write(bad)
    assert read_video(tmp_path / "long.mkv").shape == (4, 8, 8, 3)  # what came before stays


def test_to_uint8_names_video_and_frame():
    x = torch.zeros(2, 3, 4, 8, 8)
    x[1, 0, 3] = -float("inf")
    with pytest.raises(ValueError, match="values in video 1 frame 3:"):
        to_uint8(x)


# -- 5. lists from spreadsheets --------------------------------------------------------------------
@pytest.fixture
def clips(tmp_path):
    d = tmp_path / "clips"
    write_video(d / "a.mp4", np.full((6, 16, 16, 3), 100, np.uint8))
    write_video(d / "b.mp4", np.full((6, 16, 16, 3), 200, np.uint8))
    return d


def test_csv_with_byte_order_mark(clips):
    (clips / "list.csv").write_bytes("\ufeffpath,caption\r\na.mp4,a cat\r\nb.mp4,déjà vu\r\n"
                                     .encode("utf-8"))
    ds = VideoFolderDataset(clips / "list.csv", num_frames=2, size=8)
    assert [ds[i]["caption"] for i in range(2)] == ["a cat", "déjà vu"]


def test_empty_path_cell_names_the_csv_line(clips):
    csv = clips / "list.csv"
    csv.write_text("path,caption\na.mp4,a cat\n,a dog\n")
    with pytest.raises(VideoReadError) as e:
        VideoFolderDataset(csv, num_frames=2, size=8)
    assert str(e.value) == f"{csv}:3: empty 'path' cell"
    ds = VideoFolderDataset(csv, num_frames=2, size=8, on_error="skip")
    assert len(ds) == 1 and ds.skipped[0][1] == f"{csv}:3: empty 'path' cell"


def test_semicolon_and_utf16_lists_and_missing_files(clips):
    """European spreadsheets separate cells with ';'; 'Unicode text' is UTF-16 with tabs."""
    csv = clips / "list.csv"
    csv.write_bytes("Path;Caption\nb.mp4;zwei\nmissing.mp4;fehlt\n".encode("utf-8-sig"))
    with pytest.raises(VideoReadError) as e:
        VideoFolderDataset(csv, num_frames=2, size=8)
    assert str(e.value) == f"{csv}:3: {clips / 'missing.mp4'}: no such file"
    csv.write_bytes("path\tcaption\na.mp4\teins\n".encode("utf-16"))
    assert VideoFolderDataset(csv, num_frames=2, size=8)[0]["caption"] == "eins"


def test_bad_list_is_one_line_from_the_cli(clips, tmp_path, capsys):
    sets = ["data.kind=video_csv", f"data.path={clips / 'list.csv'}", "train.progress=false",
            f"train.out_dir={tmp_path / 'run'}", "data.num_frames=4"]
    cmd = ["train", "configs/vdm_tiny.yaml", "--steps", "1"] + sum([["--set", s] for s in sets], [])
    (clips / "list.csv").write_text("path,caption\n\n,\nb.mp4,x\n ,a dog\n")  # blank rows pass
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vidiff: error: {clips / 'list.csv'}:5: empty 'path' cell"
    (clips / "list.csv").write_text("path\nb.mp4\n")
    assert main(cmd + ["--set", "data.num_frames=8"]) == 2
    assert capsys.readouterr().err.strip() == (f"vidiff: error: {clips / 'list.csv'}:2: "
                                               f"{clips / 'b.mp4'}: 6 frames (0.75 s), too "
                                               "short for a clip of 8 frames")


# -- 6. the same file types everywhere -------------------------------------------------------------
@pytest.mark.parametrize("suffix", WRITABLE_SUFFIXES)
def test_what_is_written_is_read(tmp_path, suffix):
    assert suffix in READABLE_SUFFIXES
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[:, 4:12, 4:12] = (220, 40, 40)
    p = write_video(tmp_path / f"c{suffix}", frames)
    assert read_video(p).shape == frames.shape
    assert len(VideoFolderDataset(tmp_path, num_frames=2, size=8)) == 1


def test_unwritable_suffix_lists_every_format(tmp_path):
    with pytest.raises(ValueError) as e:
        write_sample_outputs([np.zeros((2, 8, 8, 3), np.uint8)], tmp_path / "out.flv", 8)
    assert str(e.value) == (f"{tmp_path / 'out.flv'}: cannot write .flv videos; use .mp4, .mov, "
                            ".mkv, .webm, .avi, .gif")
    files = write_sample_outputs([np.zeros((2, 8, 8, 3), np.uint8)], tmp_path / "out.mov", 8)
    assert read_video(files["video"]).shape == (2, 256, 256, 3)


def test_eval_reads_the_mkv_files_long_writes(tmp_path, capsys):
    from vidiff.data.moving_shapes import MovingShapesConfig, generate_clip

    cfg = MovingShapesConfig(size=16, num_frames=4, max_objects=1)
    for i in range(2):
        write_video(tmp_path / f"long_{i}.mkv", generate_clip(cfg, i).video)
    assert main(["eval", str(tmp_path), "--max-objects", "1"]) == 0
    assert '"num_videos": 2' in capsys.readouterr().out


# -- 7. lossy output where a better one is a parameter away ----------------------------------------
def test_gif_palette_fits_the_file(real_dir, tmp_path):
    frames = _small_real_frames(real_dir)
    assert _psnr(read_video(write_video(tmp_path / "box.gif", frames)), frames) >= 30


def test_gif_palette_holds_for_frames_after_the_fit(real_dir, tmp_path):
    frames = _small_real_frames(real_dir, n=40)  # more than the frames the palette is fitted to
    with VideoWriter(tmp_path / "s.gif", fps=8) as w:
        for i in range(0, 40, 7):
            w.write(frames[i:i + 7])
    assert _psnr(read_video(tmp_path / "s.gif"), frames) >= 30


def test_avi_is_written_at_a_fixed_quality(real_dir, tmp_path):
    """MPEG-4 at FFmpeg's default 200 kb/s gave 29.7 dB on these frames."""
    frames = _small_real_frames(real_dir, size=(160, 120))
    assert _psnr(read_video(write_video(tmp_path / "box.avi", frames)), frames) >= 33
