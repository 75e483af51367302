"""Video files in and out with PyAV; uint8 ``(F, H, W, 3)`` at this boundary.

``read_video`` / ``read_frames`` decode :data:`READABLE_SUFFIXES` upright (display matrix and
pixel aspect honoured); ``probe_video`` reports rate, variable rate, rotation and frame times.
``write_video`` / ``VideoWriter`` encode :data:`WRITABLE_SUFFIXES` and refuse NaN/inf frames;
``export_to_video`` / ``export_to_gif`` take diffusers-style frame lists too.
``to_uint8`` turns model output into frames; ``tile_videos``, ``contact_sheet`` and
``write_sample_outputs`` lay a batch of clips out for viewing.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np
import torch
from PIL import Image

from ..ranges import check_range
from .formats import FPS_RANGE, READABLE_SUFFIXES, WRITABLE_SUFFIXES, check_writable

__all__ = ["VideoReadError", "READABLE_SUFFIXES", "WRITABLE_SUFFIXES", "check_writable",
           "read_video", "read_frames", "iter_frames", "probe_video", "write_video",
           "VideoWriter", "export_to_video", "export_to_gif", "to_uint8", "to_uint8_frames"]

class VideoReadError(RuntimeError):
    """A video file could not be decoded (missing, empty, truncated or not a video)."""


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    why = ("a folder, not a video" if p.is_dir() else "no such file" if not p.is_file()
           else "empty file" if p.stat().st_size == 0 else None)
    if why:
        raise VideoReadError(f"{path}: {why}")
    return p


@contextlib.contextmanager
def _decoding(path, what: str):
    """FFmpeg's and the OS's errors as one-line :class:`VideoReadError`."""
    try:
        yield
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot {what} video ({e})") from e


def _video_stream(c, path):
    """The first video stream that is the video (not a cover picture)."""
    for s in c.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    raise VideoReadError(f"{path}: no video stream")


def _display_matrix(frame) -> tuple[int, int, int, int] | None:
    """``(p, q, r, s)``: the display matrix maps a stored pixel ``(x, y)`` (y down) to
    ``X = p x + r y``, ``Y = q x + s y`` on screen."""
    for sd in frame.side_data:
        if sd.type.name == "DISPLAYMATRIX":
            m = struct.unpack("=9i", bytes(sd))
            return m[0], m[1], m[3], m[4]
    return None


def _rgb(frame, sar: Fraction | None) -> np.ndarray:
    """A decoded frame as the viewer sees it: square pixels, turned and mirrored the way its
    display matrix says (PyAV decodes the stored picture: a portrait phone video is stored
    landscape with a quarter turn in the matrix)."""
    w, h = frame.width, frame.height
    if sar and sar != 1:  # stretch the short side, losing no pixel
        w, h = (round(w * sar), h) if sar > 1 else (w, round(h / sar))
    a = frame.to_ndarray(format="rgb24", width=w, height=h)
    m = _display_matrix(frame)
    if m is None:
        return a
    p, q, r, s = m
    if abs(p) + abs(s) < abs(q) + abs(r):  # a quarter turn: rows follow x, columns y
        a, col, row = a.transpose(1, 0, 2), r, q
    else:
        col, row = p, s
    return np.ascontiguousarray(a[::-1 if row < 0 else 1, ::-1 if col < 0 else 1])


def _frame_times(stamps: list[int | None], tb, rate: float) -> np.ndarray:
    """Presentation times in seconds from the first frame (decoders emit frames in
    presentation order, so the sorted stamps are the decoded frames' times)."""
    if None in stamps or not stamps or not tb:
        return np.arange(len(stamps)) / rate
    t = np.sort(np.asarray(stamps, np.int64))
    return (t - t[0]) * float(tb)


def probe_video(path: str | os.PathLike, with_times: bool = False) -> dict:
    """What a file holds, as :func:`iter_frames` delivers it: ``fps`` (from the presentation
    times; for a variable rate the mean), ``num_frames``, ``width`` / ``height`` (upright, square
    pixels), ``vfr`` (whether frames are unevenly spaced), ``rotation`` (the display matrix's
    counter-clockwise turn in degrees, FFmpeg's sign: a portrait phone video is ``-90``) and
    ``mirrored`` (left-right, after the turn), ``sar``; with ``with_times`` also ``times`` (seconds, one per frame).
    Reads every packet (no decoding but the first frame)."""
    path = _check_file(path)
    stamps, first = [], None
    with _decoding(path, "read"), av.open(str(path)) as c:
        s = _video_stream(c, path)
        for pkt in c.demux(s):
            if pkt.size == 0 or pkt.is_discard:  # flush packets, AVI's dropped frames
                continue
            stamps.append(pkt.pts if pkt.pts is not None else pkt.dts)
            if first is None:
                first = next(iter(s.decode(pkt)), None)
        if first is None:
            first = next(iter(s.decode(None)), None)
        sar = s.sample_aspect_ratio or s.codec_context.sample_aspect_ratio
        rate = float(s.average_rate or s.guessed_rate or 0) or 25.0
        times = _frame_times(stamps, s.time_base, rate)
        h, w = _rgb(first, sar).shape[:2] if first is not None else (0, 0)
    if first is None:
        raise VideoReadError(f"{path}: no decodable frames")
    n, d = len(times), np.diff(times)
    p, q, r, s = _display_matrix(first) or (1, 0, 0, 1)
    flip = -1 if p * s - q * r < 0 else 1  # mirrored: the turn is that of the matrix unmirrored
    turn = round(math.degrees(math.atan2(flip * r, flip * p)))
    info = {"fps": float((n - 1) / times[-1] if n > 1 and times[-1] > 0 else rate),
            "num_frames": n,
            "width": w, "height": h,
            "vfr": bool(n > 2 and d.max() - d.min() > 0.25 * np.median(d)),
            "rotation": 180 if turn == -180 else turn, "mirrored": flip < 0,
            "sar": float(sar) if sar else 1.0}
    if with_times:
        info["times"] = times
    return info


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode frames one at a time as uint8 ``(H, W, 3)`` RGB, upright."""
    with _decoding(path, "decode"), av.open(str(path)) as c:
        s = _video_stream(c, path)
        sar = s.sample_aspect_ratio or s.codec_context.sample_aspect_ratio
        for frame in c.decode(s):
            yield _rgb(frame, sar)


def read_frames(path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
    """The decoded frames at ``indices`` (in presentation order; repeats allowed), uint8
    ``(len(indices), H, W, 3)``. Raises :class:`VideoReadError` when fewer decode."""
    _check_file(path)
    wanted, got, count = set(int(i) for i in indices), {}, 0
    last = max(wanted)
    for count, fr in enumerate(iter_frames(path), 1):
        if count - 1 in wanted:
            got[count - 1] = fr
        if count > last:
            return np.stack([got[int(i)] for i in indices])
    raise VideoReadError(f"{path}: wanted frame {last}, only {count} decodable")


def read_video(path: str | os.PathLike, start: int = 0, num_frames: int | None = None,
               stride: int = 1) -> np.ndarray:
    """Frames ``start, start + stride, ...`` (``num_frames`` of them, or all) as uint8
    ``(F, H, W, 3)``. Raises :class:`VideoReadError` for unreadable or too-short files."""
    if start < 0 or stride < 1 or (num_frames is not None and num_frames < 1):
        raise ValueError(f"read_video: start >= 0, stride >= 1, num_frames >= 1; got {start}, "
                         f"{stride}, {num_frames}")
    if num_frames is not None:
        return read_frames(path, range(start, start + stride * num_frames, stride))
    out = list(itertools.islice(iter_frames(_check_file(path)), start, None, stride))
    if not out:
        raise VideoReadError(f"{path}: no decodable frames")
    return np.stack(out)


def _refuse_nonfinite(bad: list[str]) -> None:
    if bad:
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        raise ValueError(f"NaN or infinite values in {', '.join(bad[:8])}{more}: refusing to "
                         "write them (they would be saved as black or white pixels)")


def to_uint8(x: torch.Tensor, first_frame: int = 0) -> np.ndarray:
    """Float videos ``(N, C, F, H, W)`` in [-1, 1] (clamped) -> uint8 ``(N, F, H, W, 3)``; one
    clip ``(C, F, H, W)`` -> ``(F, H, W, 3)``. NaN/inf raise a ValueError naming the frames
    (numbered from ``first_frame``)."""
    if x.ndim not in (4, 5):
        raise ValueError(f"a video tensor must be (N, C, F, H, W) or (C, F, H, W), got "
                         f"{tuple(x.shape)}")
    if x.is_floating_point():
        per_frame = (~torch.isfinite(x)).any(dim=-4 if x.ndim == 4 else 1).flatten(-2).any(-1)
        _refuse_nonfinite([(f"video {v} " if x.ndim == 5 else "") + f"frame {first_frame + f}"
                           for v, f in per_frame.reshape(-1, per_frame.shape[-1])
                           .nonzero().tolist()])
    channels_last = (0, 2, 3, 4, 1) if x.ndim == 5 else (1, 2, 3, 0)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(*channels_last).cpu().numpy()


def to_uint8_frames(frames, first_frame: int = 0) -> np.ndarray:
    """Accept uint8/int/float ``(F, H, W, 3)`` arrays (integers in 0..255, floats in [0, 1]),
    lists of such frames or
    PIL images, or a torch ``(C, F, H, W)`` tensor in [-1, 1]; return uint8 ``(F, H, W, 3)``.
    NaN/inf raise a ValueError naming the frames (numbered from ``first_frame``)."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4:
            raise ValueError(f"a video tensor must be (C, F, H, W), got {tuple(frames.shape)}")
        return to_uint8(frames.detach().float().cpu(), first_frame)
    if isinstance(frames, (list, tuple)):
        frames = np.stack([np.asarray(f) for f in frames])
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got {a.shape}")
    if a.dtype.kind in "iub" and a.dtype != np.uint8:  # integers are 0..255 values
        return np.clip(a, 0, 255).astype(np.uint8)
    if a.dtype != np.uint8:
        if a.dtype.kind == "f":
            _refuse_nonfinite([f"frame {first_frame + f}" for f in
                               np.flatnonzero(~np.isfinite(a).all(axis=(1, 2, 3)))])
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return a


class VideoWriter:
    """Streaming encoder: ``with VideoWriter(path, fps) as w: w.write(frames)``.

    The suffix (:data:`WRITABLE_SUFFIXES`) picks the codec: ``.mp4`` / ``.mov`` H.264 yuv420p
    (``lossless=True``: lossless RGB, for evaluation: small coloured objects do not survive
    4:2:0 chroma), ``.webm`` VP9, ``.avi`` MPEG-4 at a fixed quantizer, ``.mkv`` FFV1 lossless,
    ``.gif`` with a palette fitted to its first :attr:`GIF_PALETTE_FRAMES` frames. Odd sizes are
    padded where the codec needs it. Frames are written as they come (memory does not grow);
    NaN/inf raise a ValueError (and a file with no frame written is removed)."""

    #: frames a GIF buffers to fit its palette before writing
    GIF_PALETTE_FRAMES = 32

    def __init__(self, path: str | os.PathLike, fps: float = 8.0, crf: int = 18,
                 lossless: bool = False):
        self.path, self.fps, self.crf, self.lossless = check_writable(path), fps, crf, lossless
        self.suffix = self.path.suffix.lower()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._c = av.open(str(self.path), mode="w")
        self._s, self._n, self._pending, self._palette = None, 0, [], None

    def _open_stream(self, h: int, w: int) -> None:
        codec, pix_fmt = {".gif": ("gif", "pal8"), ".mkv": ("ffv1", "bgr0"),
                          ".webm": ("libvpx-vp9", "yuv420p"), ".avi": ("mpeg4", "yuv420p")}.get(
            self.suffix, ("libx264rgb", "rgb24") if self.lossless else ("libx264", "yuv420p"))
        check_range(f"{self.path}: fps", self.fps, FPS_RANGE)  # else the container says 24 fps
        rate = Fraction(self.fps).limit_denominator(1000)
        s = self._c.add_stream(codec, rate=rate)
        s.pix_fmt = pix_fmt
        if codec.startswith("libx264"):
            s.options = ({"crf": "0", "preset": "veryfast"} if self.lossless
                         else {"crf": str(self.crf)})
        elif codec == "mpeg4":  # a fixed quantizer: the default 200 kb/s smears real footage
            s.codec_context.qscale, s.codec_context.global_quality = True, 3
        pad = pix_fmt == "yuv420p"
        s.width, s.height = w + (w % 2 if pad else 0), h + (h % 2 if pad else 0)
        self._s = s

    def _mux(self, vf) -> None:
        try:
            for pkt in self._s.encode(vf):
                self._c.mux(pkt)
        except OSError as e:  # the file is created at the first packet: a path we may not write
            raise ValueError(f"{self.path}: cannot write ({e.strerror or e})") from e

    def _gif_flush(self) -> None:
        if self._palette is None and self._pending:  # fit 256 colours to (16 of) the frames
            pick = np.linspace(0, len(self._pending) - 1, min(16, len(self._pending)))
            pal = Image.fromarray(np.concatenate([self._pending[round(i)] for i in pick]))
            pal = pal.quantize(256, method=Image.Quantize.FASTOCTREE)
            colors = np.asarray(pal.getpalette()[:768], np.uint8).reshape(-1, 3)
            argb = np.full((256, 4), 255, np.uint8)  # PyAV's palette: ARGB
            argb[:, 1:] = np.concatenate([colors, np.zeros((256 - len(colors), 3), np.uint8)])
            self._palette = pal, argb
        pal, argb = self._palette or (None, None)
        for fr in self._pending:
            q = np.asarray(Image.fromarray(fr).quantize(palette=pal, dither=Image.Dither.NONE))
            self._mux(av.VideoFrame.from_ndarray((q, argb), format="pal8"))
        self._pending = []

    def write(self, frames) -> None:
        for fr in to_uint8_frames(frames, first_frame=self._n):
            if self._s is None:
                self._open_stream(fr.shape[0], fr.shape[1])
            if fr.shape[0] != self._s.height or fr.shape[1] != self._s.width:
                fr = np.pad(fr, ((0, self._s.height - fr.shape[0]),
                                 (0, self._s.width - fr.shape[1]), (0, 0)), mode="edge")
            self._n += 1
            if self.suffix == ".gif":
                self._pending.append(np.ascontiguousarray(fr))
                if self._palette is not None or len(self._pending) >= self.GIF_PALETTE_FRAMES:
                    self._gif_flush()
            else:
                self._mux(av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24"))

    def close(self) -> None:
        if self._s is not None:
            self._gif_flush()
            self._mux(None)
        self._c.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if exc[0] is not None and self._n == 0:
            self.path.unlink(missing_ok=True)


def write_video(path: str | os.PathLike, frames, fps: float = 8.0, lossless: bool = False) -> Path:
    """Encode uint8 ``(F, H, W, 3)`` frames (or what :func:`to_uint8_frames` takes) to ``path``
    at ``fps`` (0.001 to 1000). Raises ``ValueError`` for no frames, NaN/inf frames, an
    unwritable path or type."""
    frames = to_uint8_frames(frames)
    if len(frames) == 0:
        raise ValueError(f"{path}: no frames to write")
    with VideoWriter(path, fps, lossless=lossless) as w:
        w.write(frames)
    return Path(path)


def export_to_video(frames, path: str | os.PathLike, fps: float = 8.0) -> str:
    """diffusers-style: write frames to a video file (mp4, ...) and return its path."""
    return str(write_video(path, frames, fps))


def export_to_gif(frames, path: str | os.PathLike, fps: float = 8.0) -> str:
    """diffusers-style: write frames to a gif and return its path."""
    if Path(path).suffix.lower() != ".gif":
        raise ValueError("export_to_gif needs a .gif path")
    return str(write_video(path, frames, fps))
