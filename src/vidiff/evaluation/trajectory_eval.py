"""Trajectory error on paths unlike the training ones (Tora's metric, Zhang et al. 2024 §4):
circles, zigzags and spirals that Moving Shapes never draws (its objects move in straight
lines or smooth random turns), the object asked for by a one-object prompt, its generated
centroid (the exact detector) against the requested path, per frame and per clip."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..data.moving_shapes import PALETTE, SHAPES
from .detector import detect_frame, detect_video
from .metrics import tracks_by_color

__all__ = ["TEST_PATHS", "test_path", "path_errors", "trajectory_requests", "trajectory_report"]

#: the held-out path families
TEST_PATHS = ("circle", "zigzag", "spiral")


def test_path(kind: str, num_frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(num_frames, 2)`` pixel path of family ``kind`` on a ``size`` canvas, kept
    ``size / 5`` from the edges (so the object stays whole): a circle arc (radius 15-25% of the
    canvas, 0.5-1 turn), a zigzag (2-3 legs of a random heading), or a spiral (half to one turn,
    the radius shrinking by half)."""
    m = size / 5
    c = rng.uniform(2 * m, size - 2 * m, 2)
    t = np.linspace(0, 1, num_frames)
    if kind == "circle":
        r, turns, a0 = rng.uniform(0.15, 0.25) * size, rng.uniform(0.5, 1.0), rng.uniform(0, 6.3)
        ang = a0 + 2 * math.pi * turns * t * rng.choice([-1, 1])
        p = c + r * np.stack([np.cos(ang), np.sin(ang)], 1)
    elif kind == "spiral":
        r0, turns, a0 = rng.uniform(0.2, 0.3) * size, rng.uniform(0.5, 1.0), rng.uniform(0, 6.3)
        ang = a0 + 2 * math.pi * turns * t * rng.choice([-1, 1])
        p = c + (r0 * (1 - 0.5 * t))[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
    elif kind == "zigzag":
        legs, head = int(rng.integers(2, 4)), rng.uniform(0, 2 * math.pi)
        along = np.array([math.cos(head), math.sin(head)])
        across = np.array([-along[1], along[0]])
        length, amp = rng.uniform(0.3, 0.45) * size, rng.uniform(0.08, 0.15) * size
        tri = 1 - np.abs((t * legs) % 2 - 1) * 2  # -1 .. 1 triangle wave
        p = c + ((t - 0.5) * length)[:, None] * along + (amp * tri)[:, None] * across
    else:
        raise ValueError(f"unknown test path {kind!r}; choose one of {TEST_PATHS}")
    return np.clip(p, m, size - m).astype(np.float32)


def trajectory_requests(n: int, num_frames: int, size: int, seed: int = 0
                        ) -> list[tuple[str, str, str, np.ndarray]]:
    """``n`` requests ``(prompt, colour, family, path (F, 2))``, the families in turn."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = TEST_PATHS[i % len(TEST_PATHS)]
        color, shape = str(rng.choice(list(PALETTE))), str(rng.choice(SHAPES))
        out.append((f"a {color} {shape}", color, kind, test_path(kind, num_frames, size, rng)))
    return out


def path_errors(video: np.ndarray, color: str, path: np.ndarray) -> np.ndarray:
    """Per-frame distance (pixels) between the requested ``path`` ``(F, 2)`` and the generated
    ``color`` object's centroid; NaN where that object is not seen."""
    track = tracks_by_color(detect_video(video)).get(color, [None] * len(path))
    return np.array([np.nan if d is None else float(np.hypot(*(np.array(d.centroid) - p)))
                     for d, p in zip(track, path)])


def trajectory_report(vids, requests, by_color: bool) -> dict:
    """Trajectory error (pixels) of clips sampled for ``requests`` (see
    :func:`trajectory_requests`): the mean over the frames where the object is seen, per frame,
    per clip, per path family (``None`` where it is never seen), and the share of frames where
    it is not seen. Without text the
    object followed is the one nearest the path's start in frame 0."""
    errs = []
    for v, (_, color, _, path) in zip(vids, requests):
        if not by_color:
            dets = detect_frame(v[0])
            near = min(dets, key=lambda d: np.hypot(*(np.array(d.centroid) - path[0])),
                       default=None)
            color = near.color if near is not None else color
        errs.append(path_errors(v, color, path))
    e = np.stack(errs)  # (N, F)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (a clip or frame never seen: NaN)
        fam = {k: float(np.nanmean(e[[r[2] == k for r in requests]])) for k in TEST_PATHS
               if any(r[2] == k for r in requests)}
        return {"mean_px": _json(np.nanmean(e)),
                "per_frame_px": [_json(v) for v in np.nanmean(e, 0).round(2)],
                "per_clip_px": [_json(v) for v in np.nanmean(e, 1).round(2)],
                "per_family_px": {k: _json(v) for k, v in fam.items()},
                "missing": float(np.isnan(e).mean())}


def _json(v: float) -> float | None:
    """``v`` as a float, ``None`` (JSON null) where no frame was seen."""
    return None if np.isnan(v) else float(v)
