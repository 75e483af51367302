"""Dense optical flow on a clip's frames with OpenCV (no model to download), at a working
resolution: every frame is turned to grey and resized so that its short side is ``size`` px,
which makes flow magnitudes comparable between 64x64 clips and HD footage.

Methods: ``dis`` (Kroeger et al. 2016, OpenCV's DIS, medium preset: fast) and ``farneback``
(Farnebäck 2003, with the parameters of Open-Sora's camera-motion tool). Frame pairs are
``gap`` frames apart with ``gap`` from a time interval, so one setting means the same motion for
8 and 30 fps footage.
"""

from __future__ import annotations

import numpy as np

from typing import Iterable, Iterator

from ..data.optical_flow import dis_flow
from ..data.video_io import VideoReadError, _check_file, _decoding, _rgb, _video_stream
from .deps import cv2

__all__ = ["FLOW_METHODS", "to_gray", "decode_frames", "load_gray", "compute_flow", "flow_gap",
           "pair_starts", "magnitude"]

FLOW_METHODS = ("dis", "farneback")


def to_gray(frame: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> uint8 grey ``(h, w)`` with ``min(h, w) == size`` (area
    averaging when shrinking, bilinear when enlarging)."""
    cv = cv2()
    g = cv.cvtColor(frame, cv.COLOR_RGB2GRAY)
    h, w = g.shape
    s = size / min(h, w)
    if s == 1:
        return g
    shape = (max(1, round(w * s)), max(1, round(h * s)))
    return cv.resize(g, shape, interpolation=cv.INTER_AREA if s < 1 else cv.INTER_LINEAR)


def decode_frames(path: str, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame number, uint8 (H, W, 3) RGB upright frame)`` for each of ``indices`` (file frame
    numbers, presentation order), ascending: one pass that stops at the last one and converts
    only the frames asked for (those before are decoded, as a codec must, but not turned into
    RGB). Raises :class:`~vidiff.data.video_io.VideoReadError` for a file that does not decode
    or has fewer frames."""
    import av

    want = set(int(i) for i in indices)
    last, n = max(want), 0
    _check_file(path)
    with _decoding(path, "decode"), av.open(str(path)) as c:
        s = _video_stream(c, path)
        sar = s.sample_aspect_ratio or s.codec_context.sample_aspect_ratio
        for n, frame in enumerate(c.decode(s), 1):
            if n - 1 in want:
                yield n - 1, _rgb(frame, sar)
            if n > last:
                return
    raise VideoReadError(f"{path}: wanted frame {last}, only {n} decode")


def load_gray(path: str, indices, size: int) -> dict[int, np.ndarray]:
    """The frames ``indices`` of ``path`` (file frame numbers, presentation order) as grey
    working-size images (:func:`decode_frames`). Raises
    :class:`~vidiff.data.video_io.VideoReadError` when fewer frames decode."""
    return {i: to_gray(f, size) for i, f in decode_frames(path, indices)}


def compute_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Forward flow from grey frame ``a`` to ``b``: float32 ``(h, w, 2)``, ``(dx, dy)`` pixels
    of the working size (``b(x + dx, y + dy) ~ a(x, y)``)."""
    cv = cv2()
    if method == "dis":
        return dis_flow(a, b)
    if method == "farneback":  # Open-Sora tools/caption/camera_motion_detect.py's parameters
        return cv.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")


def flow_gap(fps: float | None, pair_seconds: float) -> int:
    """Frames between the two frames of a pair: ``pair_seconds`` of video, at least 1."""
    if not fps or not np.isfinite(fps):
        return 1
    return max(1, int(round(fps * pair_seconds)))


def pair_starts(start: int, end: int, gap: int, num_pairs: int) -> list[int]:
    """First frames of up to ``num_pairs`` pairs ``(i, i + gap)`` spread evenly over the clip
    ``[start, end)``; ``[]`` if the clip has fewer than ``gap + 1`` frames."""
    last = end - 1 - gap
    if last < start:
        return []
    return sorted(set(np.linspace(start, last, num_pairs).round().astype(int).tolist()))


def magnitude(flow: np.ndarray) -> np.ndarray:
    """Per-pixel length of a flow field ``(..., 2)``."""
    return np.sqrt((flow.astype(np.float64) ** 2).sum(-1))
