"""``score``: motion scores of each clip, and user scorers.

``flow``
    the mean optical-flow magnitude over the whole frame, averaged over up to ``num_pairs`` frame
    pairs spread over the clip, in pixels per frame at a working short side of ``flow_size``
    (default 128), with OpenCV flow (no download). vidiff's own motion measure: its size does
    not depend on the aspect ratio, and it is per frame. ``--where`` filters use it.
``flow_opensora``
    the same motion on Open-Sora's scale, which Tora's rule (keep with probability
    ``1 - score / 100``) is written for: as their scorer computes it (``tools/scoring/
    optical_flow/inference.py``: frames 0, 10, 20 and 30 of the clip, each stretched to 320x576
    (portrait frames transposed first), flow between consecutive ones, the mean of the absolute
    flow components over pairs, pixels and both components), with OpenCV flow on grey frames
    instead of UniMatch on RGB - an estimate of their number, not a copy. Units: pixels at
    320x576 per 10 frames; a clip shorter than 11 frames uses its first and last frame and is
    scaled to 10 frames.
``camera_motion`` / ``camera_direction``
    from the same flow fields, see :mod:`.camera`.
user scorers
    ``name=hook`` (see :mod:`.hooks`), one column each.

A clip that cannot be decoded, or is too short for one pair, gets ``ok=False``.
"""

from __future__ import annotations

import numpy as np

from ..data.video_io import VideoReadError
from .camera import clip_motion, pair_motion
from .deps import cv2
from .flow import (FLOW_METHODS, compute_flow, decode_frames, flow_gap, load_gray, magnitude,
                   pair_starts)
from .hooks import HookError, hook_columns, run_hook
from .table import bad_row, clip_range, is_ok

__all__ = ["SCORE_COLUMNS", "OPENSORA_SIZE", "OPENSORA_GAP", "opensora_flow", "score_clip",
           "score_row"]

SCORE_COLUMNS = ("flow", "flow_opensora", "camera_motion", "camera_direction")
#: Open-Sora's flow scorer: (height, width) its frames are stretched to, frames between pairs
OPENSORA_SIZE, OPENSORA_GAP = (320, 576), 10


def opensora_flow(path: str, start: int, end: int, method: str = "dis") -> float:
    """Open-Sora's optical-flow score of frames ``[start, end)`` of ``path`` (see the module
    docs), ``>= 0``, pixels at 320x576 per 10 frames. Raises ``ValueError`` for a clip with
    fewer than two frames, :class:`~vidiff.data.video_io.VideoReadError` for one that does not
    decode."""
    idx = list(range(start, min(end, start + 3 * OPENSORA_GAP + 1), OPENSORA_GAP))
    if len(idx) < 2:
        if end - start < 2:
            raise ValueError(f"{end - start} frame(s): too short for a flow pair")
        idx = [start, end - 1]
    cv, (h, w) = cv2(), OPENSORA_SIZE
    gray = {}
    for i, f in decode_frames(path, idx):
        g = cv.cvtColor(f if f.shape[0] <= f.shape[1] else f.transpose(1, 0, 2),
                        cv.COLOR_RGB2GRAY)
        gray[i] = cv.resize(g, (w, h), interpolation=cv.INTER_LINEAR)
    flows = [compute_flow(gray[a], gray[b], method) for a, b in zip(idx[:-1], idx[1:])]
    return float(np.mean([np.abs(f).mean() for f in flows])) * OPENSORA_GAP / (idx[1] - idx[0])


def score_clip(path: str, start: int, end: int, fps: float, *, method: str = "dis",
               flow_size: int = 128, num_pairs: int = 8, pair_seconds: float = 0.25,
               static_speed: float = 0.04) -> dict:
    """``flow`` (pixels per frame at short side ``flow_size``), ``camera_motion`` and
    ``camera_direction`` of frames ``[start, end)`` of ``path`` at ``fps``. Pairs are
    ``round(fps * pair_seconds)`` frames apart (at least 1); a motion slower than
    ``static_speed`` short sides per second counts as none. Raises ``ValueError`` for a clip
    with fewer than two frames, :class:`~vidiff.data.video_io.VideoReadError` for one that does
    not decode."""
    gap = min(flow_gap(fps, pair_seconds), max(1, end - start - 1))
    starts = pair_starts(start, end, gap, num_pairs)
    if not starts:
        raise ValueError(f"{end - start} frame(s): too short for a flow pair")
    frames = load_gray(path, sorted({i for s in starts for i in (s, s + gap)}), flow_size)
    tau = static_speed * flow_size * gap / (fps if fps and np.isfinite(fps) else 1.0)
    mags, pairs = [], []
    for s in starts:
        f = compute_flow(frames[s], frames[s + gap], method)
        mags.append(float(magnitude(f).mean()) / gap)
        pairs.append(pair_motion(f, frames[s], tau))
    kind, direction = clip_motion(pairs)
    return {"flow": float(np.mean(mags)), "camera_motion": kind, "camera_direction": direction}


def score_row(row: dict, *, method: str = "dis", flow_size: int = 128, num_pairs: int = 8,
              pair_seconds: float = 0.25, static_speed: float = 0.04,
              scorers: tuple[tuple[str, str], ...] = (), hook_timeout: float | None = None
              ) -> list[dict]:
    """The row function of ``score``: the row with :func:`score_clip`'s columns (unless
    ``method`` is ``"none"``) and one column per user scorer ``(name, hook)``. Rows not ``ok``
    pass through; a clip that fails is marked ``ok=False`` with the reason."""
    if not is_ok(row):
        return [row]
    out = dict(row)
    try:
        if method != "none":
            if method not in FLOW_METHODS:
                raise ValueError(f"flow method must be none or one of {FLOW_METHODS}")
            start, end = clip_range(row)
            out.update(score_clip(row["path"], start, end, row.get("fps"), method=method,
                                  flow_size=flow_size, num_pairs=num_pairs,
                                  pair_seconds=pair_seconds, static_speed=static_speed))
            out["flow_opensora"] = opensora_flow(row["path"], start, end, method)
        for name, spec in scorers:
            out.update(hook_columns(name, run_hook(spec, out, hook_timeout)))
    except HookError as e:
        return [bad_row(row, "score", "scorer_failed", str(e))]
    except (VideoReadError, ValueError) as e:
        return [bad_row(row, "score", "unscorable", str(e))]
    return [out]
