"""Video files in and out with PyAV; uint8 ``(F, H, W, 3)`` at this boundary.

``read_video`` decodes mp4/avi/gif/webm/...; ``write_video`` encodes mp4 (H.264), webm (VP9)
or gif; ``export_to_video`` / ``export_to_gif`` take diffusers-style frame lists too.
``to_uint8`` turns model output into frames; ``tile_videos``, ``contact_sheet`` and
``write_sample_outputs`` lay a batch of clips out for viewing.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np
import torch
from PIL import Image

__all__ = ["VideoReadError", "read_video", "iter_frames", "probe_video", "write_video",
           "VideoWriter", "export_to_video", "export_to_gif", "to_uint8", "to_uint8_frames",
           "contact_sheet", "tile_videos", "write_sample_outputs"]


class VideoReadError(RuntimeError):
    """A video file could not be decoded (missing, empty, truncated or not a video)."""


def probe_video(path: str | os.PathLike) -> dict:
    """``{"fps": float, "num_frames": int | None, "width": int, "height": int}`` of a file."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 0) or 25.0
            return {"fps": fps, "num_frames": s.frames or None, "width": s.codec_context.width,
                    "height": s.codec_context.height}
    except VideoReadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot read video ({e})") from e


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode frames one at a time as uint8 ``(H, W, 3)`` RGB."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            for frame in c.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except VideoReadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot decode video ({e})") from e


def read_video(path: str | os.PathLike, start: int = 0, num_frames: int | None = None,
               stride: int = 1) -> np.ndarray:
    """Frames ``start, start + stride, ...`` (``num_frames`` of them, or all) as uint8
    ``(F, H, W, 3)``. Raises :class:`VideoReadError` for unreadable or too-short files."""
    if not Path(path).is_file():
        raise VideoReadError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file")
    out = []
    for i, fr in enumerate(iter_frames(path)):
        if i >= start and (i - start) % stride == 0:
            out.append(fr)
            if num_frames is not None and len(out) == num_frames:
                break
    if not out:
        raise VideoReadError(f"{path}: no decodable frames")
    if num_frames is not None and len(out) < num_frames:
        raise VideoReadError(f"{path}: wanted {num_frames} frames from {start} with stride "
                             f"{stride}, only {len(out)} decodable")
    return np.stack(out)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float videos ``(N, C, F, H, W)`` in [-1, 1] (clamped) -> uint8 ``(N, F, H, W, 3)``; one
    clip ``(C, F, H, W)`` -> ``(F, H, W, 3)``."""
    if x.ndim not in (4, 5):
        raise ValueError(f"a video tensor must be (N, C, F, H, W) or (C, F, H, W), got "
                         f"{tuple(x.shape)}")
    channels_last = (0, 2, 3, 4, 1) if x.ndim == 5 else (1, 2, 3, 0)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(*channels_last).cpu().numpy()


def to_uint8_frames(frames) -> np.ndarray:
    """Accept uint8/float ``(F, H, W, 3)`` arrays (floats in [0, 1]), lists of such frames or
    PIL images, or a torch ``(C, F, H, W)`` tensor in [-1, 1]; return uint8 ``(F, H, W, 3)``."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4:
            raise ValueError(f"a video tensor must be (C, F, H, W), got {tuple(frames.shape)}")
        return to_uint8(frames.detach().float().cpu())
    if isinstance(frames, (list, tuple)):
        frames = np.stack([np.asarray(f) for f in frames])
    a = np.asarray(frames)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got {a.shape}")
    return a


class VideoWriter:
    """Streaming encoder: ``with VideoWriter(path, fps) as w: w.write(frames)``.

    The container follows the suffix (``.mp4`` H.264 yuv420p, ``.webm`` VP9, ``.gif``, ``.mkv``
    FFV1 lossless). ``lossless=True`` makes ``.mp4`` lossless RGB H.264 (for evaluation: small
    coloured objects do not survive 4:2:0 chroma subsampling). Odd sizes are padded to even for
    H.264. Frames are written as they come, so memory does not grow.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 8.0, crf: int = 18,
                 lossless: bool = False):
        self.path, self.fps, self.crf, self.lossless = Path(path), fps, crf, lossless
        self.suffix = self.path.suffix.lower()
        if self.suffix not in (".mp4", ".webm", ".gif", ".mkv", ".avi"):
            raise ValueError(f"unsupported video format {self.suffix!r}; use .mp4, .webm or .gif")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._c = av.open(str(self.path), mode="w")
        self._s = None

    def _open_stream(self, h: int, w: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1000)
        if self.suffix == ".gif":
            s = self._c.add_stream("gif", rate=rate)
            s.pix_fmt = "rgb8"
        elif self.suffix == ".mkv":
            s = self._c.add_stream("ffv1", rate=rate)
            s.pix_fmt = "bgr0"
        elif self.suffix == ".mp4" and self.lossless:
            s = self._c.add_stream("libx264rgb", rate=rate)
            s.pix_fmt = "rgb24"
            s.options = {"crf": "0", "preset": "veryfast"}
        elif self.suffix == ".webm":
            s = self._c.add_stream("libvpx-vp9", rate=rate)
            s.pix_fmt = "yuv420p"
        else:
            s = self._c.add_stream("libx264" if self.suffix != ".avi" else "mpeg4", rate=rate)
            s.pix_fmt = "yuv420p"
            if self.suffix != ".avi":
                s.options = {"crf": str(self.crf)}
        pad = self.suffix in (".webm", ".avi") or (self.suffix == ".mp4" and not self.lossless)
        s.width, s.height = w + (w % 2 if pad else 0), h + (h % 2 if pad else 0)
        self._s = s

    def write(self, frames) -> None:
        for fr in to_uint8_frames(frames):
            if self._s is None:
                self._open_stream(fr.shape[0], fr.shape[1])
            if fr.shape[0] != self._s.height or fr.shape[1] != self._s.width:
                fr = np.pad(fr, ((0, self._s.height - fr.shape[0]),
                                 (0, self._s.width - fr.shape[1]), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")
            for pkt in self._s.encode(vf):
                self._c.mux(pkt)

    def close(self) -> None:
        if self._s is not None:
            for pkt in self._s.encode():
                self._c.mux(pkt)
        self._c.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | os.PathLike, frames, fps: float = 8.0, lossless: bool = False) -> Path:
    """Encode uint8 ``(F, H, W, 3)`` frames (or what :func:`to_uint8_frames` takes) to ``path``."""
    with VideoWriter(path, fps, lossless=lossless) as w:
        w.write(frames)
    return Path(path)


def export_to_video(frames, path: str | os.PathLike, fps: float = 8.0) -> str:
    """diffusers-style: write frames to an mp4 and return its path."""
    return str(write_video(path, frames, fps))


def export_to_gif(frames, path: str | os.PathLike, fps: float = 8.0) -> str:
    """diffusers-style: write frames to a gif and return its path."""
    if Path(path).suffix.lower() != ".gif":
        raise ValueError("export_to_gif needs a .gif path")
    return str(write_video(path, frames, fps))


def contact_sheet(videos: Sequence[np.ndarray], scale: int = 2, gap: int = 2) -> np.ndarray:
    """Grid image: one row per video, one column per frame (uint8 ``(H', W', 3)``)."""
    rows = []
    for v in videos:
        F, H, W, _ = v.shape
        row = np.zeros((H, F * (W + gap) - gap, 3), np.uint8) + 40
        for f in range(F):
            row[:, f * (W + gap): f * (W + gap) + W] = v[f]
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.zeros((len(rows) * (rows[0].shape[0] + gap) - gap, width, 3), np.uint8) + 40
    y = 0
    for r in rows:
        sheet[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + gap
    return sheet.repeat(scale, 0).repeat(scale, 1)



def tile_videos(videos: Sequence[np.ndarray], max_cols: int = 8) -> np.ndarray:
    """Clips of one size side by side, ``max_cols`` a row, as one uint8 ``(F, H', W', 3)``
    video (unused cells black)."""
    n = len(videos)
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    F, H, W, _ = videos[0].shape
    grid = np.zeros((F, rows * H, cols * W, 3), np.uint8)
    for i, v in enumerate(videos):
        r, c = divmod(i, cols)
        grid[:, r * H:(r + 1) * H, c * W:(c + 1) * W] = v
    return grid


def write_sample_outputs(videos: Sequence[np.ndarray], out: str | os.PathLike,
                         fps: float) -> dict:
    """Write a batch of uint8 clips for viewing and evaluation: tiled into one mp4 and gif at
    ``out`` (upscaled to about 256 px), each clip losslessly at its own size into
    ``<stem>_clips/``, and a contact-sheet PNG ``<stem>_sheet.png`` (rows = clips, at most 16).
    Returns the paths written under the keys ``video`` (not for a ``.gif`` out), ``gif``,
    ``clips`` and ``contact_sheet``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = tile_videos(videos)
    scale = max(1, 256 // max(grid.shape[1], grid.shape[2]))
    big = grid.repeat(scale, 1).repeat(scale, 2)
    files = {}
    if out.suffix.lower() == ".gif":
        files["gif"] = str(write_video(out, big, fps))
    else:
        files["video"] = str(write_video(out, big, fps))
        files["gif"] = str(write_video(out.with_suffix(".gif"), big, fps))
    clips = out.with_name(out.stem + "_clips")
    clips.mkdir(exist_ok=True)
    for i, v in enumerate(videos):  # one lossless file per clip, for `vidiff eval`
        write_video(clips / f"clip_{i:03d}.mp4", v, fps, lossless=True)
    files["clips"] = str(clips)
    sheet = out.with_name(out.stem + "_sheet.png")
    Image.fromarray(contact_sheet(list(videos[:16]), scale=2)).save(sheet)
    files["contact_sheet"] = str(sheet)
    return files
