"""Moving Shapes metrics (exact, from the analytic detector) and PSNR / SSIM.

All video inputs are uint8 ``(F, H, W, 3)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data.captions import parse_objects
from ..data.moving_shapes import MovingShapesConfig, direction_word
from .detector import Detection, detect_video

__all__ = ["ShapeMetrics", "evaluate_videos", "frame_failure", "frame_validity", "tracks_by_color",
           "motion_smoothness", "object_adherence", "area_range", "caption_adherence", "trajectory_error",
           "psnr", "ssim"]


def area_range(cfg: MovingShapesConfig) -> tuple[float, float]:
    """Plausible visible areas: from a quarter of the smallest triangle (partly occluded) to
    1.5x the largest square."""
    lo = 0.25 * 2.3 * (cfg.min_scale * cfg.size) ** 2 / 1.0
    hi = 1.5 * 4 * (cfg.max_scale * cfg.size) ** 2
    return lo, hi


def frame_failure(dets: list[Detection], cfg: MovingShapesConfig,
                  expected: int | None = None) -> str | None:
    """Why a frame is invalid, or ``None`` when it is valid (see :func:`frame_validity`):
    ``"oversized"`` (an object larger than any the data draws), ``"clutter"`` (stray coloured
    pixels adding up to more than a small object), ``"missing"`` (fewer objects than allowed,
    e.g. an empty frame) or ``"extra"`` (more objects than allowed)."""
    lo, hi = area_range(cfg)
    big = [d for d in dets if d.area >= lo]
    if any(d.area > hi for d in big):
        return "oversized"
    if sum(d.area for d in dets if d.area < lo) > lo:
        return "clutter"
    n = len(big)
    if expected is not None:
        least, most = (expected - 1, expected) if expected > 1 else (1, 1)
    else:
        least, most = max(1, cfg.min_objects - 1), cfg.max_objects
    return "missing" if n < least else "extra" if n > most else None


def frame_validity(dets: list[Detection], cfg: MovingShapesConfig,
                   expected: int | None = None) -> bool:
    """A frame is valid when it holds the expected number of objects (or, unconditionally,
    between ``min_objects`` and ``max_objects``, allowing one fewer for an occlusion), each of
    plausible area, with nothing but them in the foreground."""
    return frame_failure(dets, cfg, expected) is None


def tracks_by_color(dets: list[list[Detection]]) -> dict[str, list[Detection | None]]:
    """One track per colour: the largest component of that colour in each frame (None if absent)."""
    colors = {d.color for fr in dets for d in fr}
    tracks: dict[str, list[Detection | None]] = {}
    for c in colors:
        tr = []
        for fr in dets:
            cand = [d for d in fr if d.color == c]
            tr.append(max(cand, key=lambda d: d.area) if cand else None)
        tracks[c] = tr
    return tracks


def _second_differences(path: np.ndarray, bounce_px: float = 0.3) -> list[float]:
    """|c[i+1] - 2 c[i] + c[i-1]| along a (F, 2) path, skipping bounces (a velocity component
    that reverses with both steps larger than ``bounce_px``)."""
    out = []
    for i in range(1, len(path) - 1):
        a, b = path[i] - path[i - 1], path[i + 1] - path[i]
        bounce = any(a[k] * b[k] < 0 and abs(a[k]) > bounce_px and abs(b[k]) > bounce_px
                     for k in range(2))
        if not bounce:
            out.append(float(np.linalg.norm(b - a)))
    return out


def motion_smoothness(dets: list[list[Detection]], min_len: int = 3) -> float | None:
    """Mean |second difference| (px) of the centroid paths of all colour tracks, over runs of
    consecutive frames where the object is seen. None when no track is long enough."""
    vals: list[float] = []
    for tr in tracks_by_color(dets).values():
        run: list[tuple[float, float]] = []
        for d in tr + [None]:
            if d is not None:
                run.append(d.centroid)
                continue
            if len(run) >= min_len:
                vals += _second_differences(np.array(run))
            run = []
    return float(np.mean(vals)) if vals else None


def temporal_consistency(dets: list[list[Detection]]) -> float | None:
    """1 - mean over tracks of (coefficient of variation of area + share of frames whose shape
    class differs from the track's majority), clipped to [0, 1]; 1 is perfectly consistent."""
    scores = []
    for tr in tracks_by_color(dets).values():
        seen = [d for d in tr if d is not None]
        if len(seen) < 2:
            continue
        areas = np.array([d.area for d in seen], np.float32)
        cv = float(areas.std() / max(areas.mean(), 1e-6))
        shapes = [d.shape for d in seen]
        major = max(set(shapes), key=shapes.count)
        flips = 1 - shapes.count(major) / len(shapes)
        scores.append(max(0.0, 1.0 - cv - flips))
    return float(np.mean(scores)) if scores else None


_WORDS = ["right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right"]


def object_adherence(dets: list[list[Detection]], color: str, shape: str,
                     direction: str | None) -> dict[str, float | None]:
    """Whether one requested object is in a clip's detections (per frame, ``detect_video``).

    ``color``: 1 when an object of that colour is seen in at least half of the frames;
    ``shape``: 1 when, in addition, its majority shape class is ``shape``; ``direction``
    (``None`` when not asked): 1 for the 8-way heading of its first step (as captions are
    worded), 0.5 for a neighbouring heading, else 0, scored only when colour and shape match.
    Real clips score about 0.88 on direction: centroids of small, slow objects are noisy."""
    track = [d for d in tracks_by_color(dets).get(color, []) if d is not None]
    seen = len(track) >= max(1, len(dets) / 2)
    shapes = [d.shape for d in track]
    right = seen and max(set(shapes), key=shapes.count) == shape
    out: dict[str, float | None] = {"color": float(seen), "shape": float(right),
                                    "direction": None}
    if direction is not None:
        score = 0.0
        if right and len(track) >= 2:
            v = np.array(track[1].centroid) - np.array(track[0].centroid)
            diff = abs(_WORDS.index(direction_word(float(v[0]), float(v[1])))
                       - _WORDS.index(direction)) % 8
            diff = min(diff, 8 - diff)
            score = 1.0 if diff == 0 else (0.5 if diff == 1 else 0.0)
        out["direction"] = score
    return out


def caption_adherence(dets: list[list[Detection]], caption: str) -> float:
    """Mean over the caption's objects (any wording of :mod:`vidiff.data.captions`) of
    :func:`object_adherence`'s direction score (colour, shape and heading all right; an adjacent
    heading counts half), or of its shape score for an object named without a direction; NaN
    when the caption names no object."""
    objs = parse_objects(caption)
    if not objs:
        return float("nan")
    scores = [object_adherence(dets, c, s, d) for c, s, d in objs]
    return float(np.mean([r["direction"] if d is not None else r["shape"]
                          for r, (_, _, d) in zip(scores, objs)]))


def trajectory_error(dets: list[list[Detection]], colors: list[str],
                     trajectories: np.ndarray) -> float:
    """Mean distance (px) between requested ``(N, F, 2)`` centroid paths and the detected ones
    (matched by colour); a frame where the object is missing counts as the canvas diagonal / 4."""
    tracks = tracks_by_color(dets)
    F = trajectories.shape[1]
    errs = []
    for c, path in zip(colors, trajectories):
        tr = tracks.get(c, [None] * F)
        for f in range(F):
            d = tr[f] if f < len(tr) else None
            errs.append(np.linalg.norm(np.array(d.centroid) - path[f]) if d is not None
                        else float("nan"))
    e = np.array(errs, np.float64)
    miss = np.isnan(e)
    penalty = 0.25 * math.sqrt(2) * 64
    e[miss] = penalty
    return float(e.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) between uint8 arrays of one shape."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * math.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of uint8 ``(..., H, W, 3)`` frames (8x8 uniform windows on luma; Wang et al.
    constants)."""
    import torch
    import torch.nn.functional as F

    def luma(x):
        x = torch.from_numpy(np.ascontiguousarray(x)).double().reshape(-1, *x.shape[-3:])
        return (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[:, None]

    x, y = luma(a), luma(b)
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = min(7, x.shape[-1], x.shape[-2])
    mu_x, mu_y = F.avg_pool2d(x, k, 1), F.avg_pool2d(y, k, 1)
    sxx = F.avg_pool2d(x * x, k, 1) - mu_x ** 2
    syy = F.avg_pool2d(y * y, k, 1) - mu_y ** 2
    sxy = F.avg_pool2d(x * y, k, 1) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + C1) * (2 * sxy + C2)) / ((mu_x ** 2 + mu_y ** 2 + C1) * (sxx + syy + C2))
    return float(s.mean())


@dataclass
class ShapeMetrics:
    num_videos: int
    validity: float
    motion_smoothness: float | None
    temporal_consistency: float | None
    caption_adherence: float | None = None
    trajectory_error: float | None = None
    #: fraction of all frames failing for each reason of :func:`frame_failure`
    invalid: dict[str, float] = field(default_factory=dict)
    #: per clip, one character per frame: ``.`` valid, else the first letter of its
    #: :func:`frame_failure` reason (``m`` missing, ``e`` extra, ``c`` clutter, ``o`` oversized)
    clip_failures: list[str] = field(default_factory=list)
    #: clips that fail in every frame (e.g. stay empty) and clips that fail only in some
    #: (an object appearing, splitting or changing colour part-way)
    invalid_clips: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_videos(videos: list[np.ndarray], cfg: MovingShapesConfig,
                    captions: list[str] | None = None, expected_counts: list[int] | None = None,
                    min_area: int = 3) -> ShapeMetrics:
    """Moving Shapes metrics of a list of uint8 ``(F, H, W, 3)`` videos."""
    if not videos:
        raise ValueError("no videos to evaluate")
    fails, clips, smooth, consist, adhere = [], [], [], [], []
    for i, v in enumerate(videos):
        dets = detect_video(v, min_area)
        exp = expected_counts[i] if expected_counts else None
        clip = [frame_failure(d, cfg, exp) for d in dets]
        fails += clip
        clips.append("".join("." if f is None else f[0] for f in clip))
        if (s := motion_smoothness(dets)) is not None:
            smooth.append(s)
        if (c := temporal_consistency(dets)) is not None:
            consist.append(c)
        if captions:
            adhere.append(caption_adherence(dets, captions[i]))
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    invalid = {r: sum(f == r for f in fails) / len(fails)
               for r in ("missing", "extra", "clutter", "oversized")}
    invalid_clips = {"all_frames": sum("." not in c for c in clips),
                     "some_frames": sum("." in c and c != "." * len(c) for c in clips)}
    return ShapeMetrics(num_videos=len(videos), validity=fails.count(None) / len(fails),
                        motion_smoothness=mean(smooth), temporal_consistency=mean(consist),
                        caption_adherence=mean(adhere) if captions else None, invalid=invalid,
                        clip_failures=clips, invalid_clips=invalid_clips)
