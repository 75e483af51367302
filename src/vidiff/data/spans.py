"""The parts of a CSV list row that :class:`~vidiff.data.datasets.VideoFolderDataset` reads
beyond its path and caption: the clip's span in its file (``start`` / ``end`` seconds, or
``start_frame`` / ``end_frame`` as ``vidiff data split`` writes them), whether the row is usable
(``ok``), and its point tracks (``trajectory``: a ``.npz`` of ``vidiff data trajectories``),
mapped onto the frames and the resize / crop of an item.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .video_io import VideoReadError

__all__ = ["ROW_COLUMNS", "frame_span", "row_ok", "in_span", "load_tracks", "crop_tracks"]

#: the optional cells read from each row of a CSV list (besides path, caption, start, end)
ROW_COLUMNS = ("start_frame", "end_frame", "ok", "trajectory")


def frame_span(cells: dict, where: str) -> tuple[int, int] | None:
    """``(start_frame, end_frame)`` (end exclusive) from a row's cells, ``None`` when either is
    empty or missing. Raises ``ValueError`` naming ``where`` for cells that are not whole
    numbers ``0 <= start < end``."""
    a, b = cells.get("start_frame"), cells.get("end_frame")
    if not a or not b:
        return None
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        raise ValueError(f"{where}: start_frame / end_frame must be frame numbers, got "
                         f"{a!r}, {b!r}") from None
    if fa != int(fa) or fb != int(fb) or not 0 <= fa < fb:
        raise ValueError(f"{where}: need whole frame numbers 0 <= start_frame < end_frame, "
                         f"got {a}, {b}")
    return int(fa), int(fb)


def row_ok(cell: str | None) -> bool:
    """Whether an ``ok`` cell marks a usable row (empty or missing: yes; ``False`` / ``0`` /
    ``no``, any case: no) - the reading of :func:`vidiff.dataproc.table.is_ok`."""
    return cell is None or cell.strip().lower() not in ("false", "0", "no")


def in_span(info: dict, span: tuple[float, float] | None,
            frames: tuple[int, int] | None = None) -> dict:
    """``info`` (:func:`~vidiff.data.video_io.probe_video` with times) cut to a clip: frames
    ``frames = (a, b)`` (end exclusive) when given, else those of ``span`` seconds, each bound
    snapped to the nearest frame time (the end of the file counts as a time: an ``end`` at or
    past it is the last frame); ``offset`` is the first frame's number, ``times`` start at 0.
    Raises :class:`VideoReadError` for a span outside the file or with no frame in it."""
    t = info["times"]
    n = len(t)
    if frames is not None:
        a, b = frames
        if b > n:
            raise VideoReadError(f"frames {a} to {b} asked, the file has {n}")
    elif span is None:
        return {**info, "offset": 0}
    else:
        period = float(np.median(np.diff(t))) if n > 1 else 0.0
        ends = np.append(t, t[-1] + period)  # frame starts, then the file's end
        a = int(np.abs(t - span[0]).argmin())
        b = n if not np.isfinite(span[1]) else int(np.abs(ends - span[1]).argmin())
        if span[0] > t[-1] + 0.5 * period or a >= b:
            raise VideoReadError(f"no frame between {span[0]:g} s and {span[1]:g} s "
                                 f"(the file lasts {ends[-1]:.2f} s)")
    return {**info, "times": t[a:b] - t[a], "num_frames": b - a, "offset": a}


def load_tracks(path: Path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a trajectory ``.npz`` (``tracks`` ``(K, T, 2)`` source pixels, ``visible``
    ``(K, T)``, ``frames`` ``(T,)`` file frame numbers) at the file frames ``frames`` ``(F,)``:
    float32 ``(K, F, 2)`` and bool ``(K, F)``; a frame the file did not track is NaN and not
    visible. Raises :class:`VideoReadError` naming the file when it is missing or unreadable."""
    try:
        with np.load(path) as z:
            tracks, visible, tf = z["tracks"], z["visible"].astype(bool), z["frames"]
    except (OSError, KeyError, ValueError) as e:
        raise VideoReadError(f"{path}: not a readable trajectory file ({e})") from e
    where = {int(f): i for i, f in enumerate(tf)}
    k = np.array([where.get(int(f), -1) for f in frames])
    out = np.full((len(tracks), len(frames), 2), np.nan, np.float32)
    vis = np.zeros((len(tracks), len(frames)), bool)
    have = k >= 0
    out[:, have], vis[:, have] = tracks[:, k[have]], visible[:, k[have]]
    return out, vis


def crop_tracks(tracks: np.ndarray, visible: np.ndarray, src_hw: tuple[int, int], size: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(K, F, 2)`` (x, y) in source pixels of frames ``src_hw = (H, W)`` mapped through
    :func:`~vidiff.data.datasets.resize_crop` (short side to ``size``, centre crop): positions in
    the ``size x size`` item (pixel centres at integers), and ``visible`` ``(K, F)`` also false
    outside the crop."""
    H, W = src_hw
    s = size / min(H, W)
    nh, nw = max(size, round(H * s)), max(size, round(W * s))
    top, left = (nh - size) // 2, (nw - size) // 2
    scale = np.array([nw / W, nh / H], np.float32)
    out = (tracks + 0.5) * scale - 0.5 - np.array([left, top], np.float32)
    inside = ((out >= -0.5) & (out < size - 0.5)).all(-1)
    return out.astype(np.float32), visible & inside
