"""``trajectories``: sparse point tracks from real clips, for training a trajectory adapter as
Tora's stage 2 does (§3.3, "Data Processing and Training Strategy": 1 to N object trajectories
picked by their optical flow): dense optical flow between consecutive frames; candidate points
on a strided grid of the first frame, those on an edge (where flow is measured, not filled in)
whose first step passes the forward-backward check; each tracked by chaining the flow,
``p[t+1] = p[t] + flow_t(p[t])`` (bilinear), and stopped where forward and backward flow
disagree (Sundaram et al. 2010); then ``num_points`` of the tracks drawn without replacement
with probability proportional to the track's own motion (its mean step, pixels a frame, while
tracked: points that move are preferred, those slower than ``min_motion`` never drawn). Tora
Gaussian-filters the tracks into its displacement maps at training time; the raw points are
stored.

One ``.npz`` a clip in ``out_dir`` (the row's ``trajectory`` cell), holding

``tracks``   float32 ``(K, T, 2)``: ``(x, y)`` pixel positions in the upright source frame
``visible``  bool ``(K, T)``: the point is inside the frame (a track that leaves stays put)
``frames``   int64 ``(T,)``: the file frame numbers; ``fps``: their rate

and the row gets ``num_tracks`` (K; 0 for a clip where nothing moves).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..data.video_io import VideoReadError
from .deps import cv2
from .flow import compute_flow, load_gray
from .table import bad_row, clip_key, clip_range, is_ok, row_uniform

__all__ = ["TRAJECTORY_COLUMNS", "track_points", "extract_tracks", "trajectories_row"]

TRAJECTORY_COLUMNS = ("trajectory", "num_tracks")


def _sample(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear values of a flow field ``(h, w, 2)`` at points ``(K, 2)`` (edges repeated)."""
    cv = cv2()
    mx, my = pts[None, :, 0].copy(), pts[None, :, 1].copy()
    return np.stack([cv.remap(np.ascontiguousarray(field[..., c]), mx, my, cv.INTER_LINEAR,
                              borderMode=cv.BORDER_REPLICATE)[0] for c in range(2)], 1)


def track_points(points: np.ndarray, flows: list[np.ndarray],
                 back: list[np.ndarray] | None = None, tolerance: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Chain the forward flows ``(h, w, 2)`` from points ``(K, 2)`` (x, y, working pixels):
    tracks ``(K, len(flows) + 1, 2)`` and visibility ``(K, len(flows) + 1)``. A point that leaves
    the frame - or, given the backward flows ``back``, whose forward and backward flow disagree
    by more than ``tolerance`` + 5% of the motion (occluded, or lost: Sundaram et al. 2010) -
    stops there and is invisible from then on."""
    pts = points.astype(np.float32).reshape(-1, 2).copy()
    tracks, visible = [pts.copy()], [np.ones(len(pts), bool)]
    alive = np.ones(len(pts), bool)
    for t, f in enumerate(flows):
        if not len(pts):
            tracks.append(pts.copy())
            visible.append(alive.copy())
            continue
        h, w = f.shape[:2]
        d = _sample(f, pts)
        moved = pts + d
        alive &= (moved[:, 0] >= 0) & (moved[:, 0] <= w - 1) & (moved[:, 1] >= 0) & (
            moved[:, 1] <= h - 1)
        if back is not None:
            err = np.hypot(*(d + _sample(back[t], moved)).T)
            alive &= err <= tolerance + 0.05 * np.hypot(*d.T)
        pts = np.where(alive[:, None], moved, pts)
        tracks.append(pts.copy())
        visible.append(alive.copy())
    return np.stack(tracks, 1), np.stack(visible, 1)


def extract_tracks(path: str, start: int, end: int, *, src_size: tuple[int, int],
                   num_points: int = 8, grid: int = 8, flow_size: int = 128,
                   method: str = "dis", stride: int = 1, max_frames: int | None = None,
                   min_motion: float = 0.25, rng: np.random.Generator | None = None) -> dict:
    """Tracks of frames ``start, start + stride, ... < end`` (at most ``max_frames``) of
    ``path``, whose upright frames are ``src_size = (width, height)``: a dict with ``tracks``,
    ``visible``, ``frames`` (see the module docs). ``grid``: candidate spacing in working pixels
    (short side ``flow_size``); ``min_motion``: the mean step (working pixels) a track
    needs. Raises :class:`~vidiff.data.video_io.VideoReadError`, or ``ValueError``
    for a clip of fewer than two frames."""
    idx = list(range(start, end, stride))[:max_frames or None]
    if len(idx) < 2:
        raise ValueError(f"{len(idx)} frame(s): too short to track")
    gray = load_gray(path, idx, flow_size)
    flows = [compute_flow(gray[a], gray[b], method) for a, b in zip(idx[:-1], idx[1:])]
    back = [compute_flow(gray[b], gray[a], method) for a, b in zip(idx[:-1], idx[1:])]
    h, w = flows[0].shape[:2]
    ys, xs = np.mgrid[grid // 2:h:grid, grid // 2:w:grid]
    ys, xs = ys.ravel(), xs.ravel()
    cv, g0 = cv2(), gray[idx[0]]
    edge = np.hypot(cv.Sobel(g0, cv.CV_32F, 1, 0), cv.Sobel(g0, cv.CV_32F, 0, 1))[ys, xs]
    grid_pts = np.stack([xs, ys], 1).astype(np.float32)
    _, consistent = track_points(grid_pts, flows[:1], back[:1])  # trackable from the start
    cand = np.flatnonzero((edge >= 20) & consistent[:, 1])
    tracks, visible = track_points(grid_pts[cand], flows, back)
    # a track's weight: its own mean step while tracked, not the flow at its first position
    steps = np.hypot(*np.diff(tracks, axis=1).transpose(2, 0, 1)) * visible[:, 1:]
    motion = steps.sum(1) / np.maximum(visible[:, 1:].sum(1), 1)
    movers = np.flatnonzero(motion >= max(min_motion, 1e-6))
    k = min(num_points, len(movers))
    rng = rng or np.random.default_rng(0)
    pick = (rng.choice(movers, k, replace=False, p=motion[movers] / motion[movers].sum())
            if k else np.zeros(0, int))
    tracks, visible = tracks[pick], visible[pick]
    sx, sy = src_size[0] / w, src_size[1] / h  # working -> source pixels (centres aligned)
    tracks = (tracks + 0.5) * np.array([sx, sy], np.float32) - 0.5
    return {"tracks": tracks.astype(np.float32), "visible": visible,
            "frames": np.asarray(idx, np.int64)}


def _out_file(out_dir: str, path: str, start: int, end: int) -> Path:
    tag = hashlib.sha1(path.encode()).hexdigest()[:8]
    return Path(out_dir) / f"{Path(path).stem}_{tag}_{start:06d}_{end:06d}.npz"


def trajectories_row(row: dict, *, out_dir: str, num_points: int = 8, grid: int = 8,
                     flow_size: int = 128, method: str = "dis", stride: int = 1,
                     max_frames: int | None = None, min_motion: float = 0.25,
                     seed: int = 0, base: str | None = None) -> list[dict]:
    """The row function of ``trajectories``: writes the clip's ``.npz`` to ``out_dir`` and adds
    ``trajectory`` (its path) and ``num_tracks``. The points drawn are a pure function of
    ``seed`` and the clip (:func:`.table.clip_key` with ``base``, the table's folder). Rows not
    ``ok`` pass through; failures mark the row."""
    if not is_ok(row):
        return [row]
    try:
        start, end = clip_range(row)
        w, h = int(row.get("width") or 0), int(row.get("height") or 0)
        if w < 1 or h < 1:
            raise ValueError("no 'width'/'height' (run `vidiff data scan` first)")
        rng = np.random.default_rng(int(row_uniform(seed, clip_key(row, base), "tracks")
                                        * 2 ** 53))
        t = extract_tracks(row["path"], start, end, src_size=(w, h), num_points=num_points,
                           grid=grid, flow_size=flow_size, method=method, stride=stride,
                           max_frames=max_frames, min_motion=min_motion, rng=rng)
    except (VideoReadError, ValueError) as e:
        return [bad_row(row, "trajectories", "untrackable", str(e))]
    out = _out_file(out_dir, row["path"], start, end)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.npz")  # rows may repeat a clip
    fps = row.get("fps")
    np.savez(tmp, **t, fps=np.float64(fps / stride if fps and fps == fps else 0.0))
    os.replace(tmp, out)
    return [{**row, "trajectory": str(out), "num_tracks": int(t["tracks"].shape[0])}]
