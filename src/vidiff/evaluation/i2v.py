"""Image-to-video measures on Moving Shapes (exact, from the analytic detector): the generated
first frame against the given image, objects keeping their identity, headings of motion (for
motion transfer and direction prompts) and their spread.

Videos are uint8 ``(F, H, W, 3)``; angles are degrees counter-clockwise from +x with y up (the
compass of :func:`~vidiff.data.moving_shapes.direction_word`: 0 = right, 90 = up).
"""

from __future__ import annotations

import math

import numpy as np

from ..data.moving_shapes import MovingShapesConfig
from .detector import Detection, detect_video
from .metrics import area_range, frame_validity, motion_smoothness, psnr, tracks_by_color

__all__ = ["DIRECTION_ANGLES", "angle_difference", "heading", "identity_kept", "evaluate_i2v",
           "circular_spread"]

#: the 8 direction words of the captions and their angles
DIRECTION_ANGLES = {"right": 0.0, "up-right": 45.0, "up": 90.0, "up-left": 135.0, "left": 180.0,
                    "down-left": 225.0, "down": 270.0, "down-right": 315.0}


def angle_difference(a: float, b: float) -> float:
    """Smallest absolute difference of two angles, in ``[0, 180]`` degrees."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def heading(dets: list[list[Detection]], color: str, steps: int = 3,
            min_px: float = 1.0) -> float | None:
    """The angle of the ``color`` object's displacement over its first ``steps`` frames (so a
    bounce later does not count), or ``None`` when it is not seen in those frames or moves less
    than ``min_px`` pixels."""
    track = tracks_by_color(dets).get(color)
    if track is None or len(track) <= steps or track[0] is None or track[steps] is None:
        return None
    dx = track[steps].centroid[0] - track[0].centroid[0]
    dy = track[steps].centroid[1] - track[0].centroid[1]
    if math.hypot(dx, dy) < min_px:
        return None
    return math.degrees(math.atan2(-dy, dx)) % 360.0


def identity_kept(dets: list[list[Detection]], cfg: MovingShapesConfig,
                  seen: float = 0.75) -> list[bool]:
    """For each object of the first frame (a detection of plausible size): whether it keeps its
    colour and shape, i.e. its colour is seen in at least ``seen`` of the frames and every
    frame that sees it classifies the same shape."""
    lo, _ = area_range(cfg)
    tracks = tracks_by_color(dets)
    out = []
    for d0 in (d for d in dets[0] if d.area >= lo):
        tr = [d for d in tracks[d0.color] if d is not None]
        out.append(len(tr) >= seen * len(dets) and all(d.shape == d0.shape for d in tr))
    return out


def circular_spread(angles: list[float]) -> dict[str, float]:
    """How varied a set of headings is: the circular standard deviation (degrees; 0 when all
    agree) and the number of the 8 compass sectors used."""
    if not angles:
        return {"circular_std": float("nan"), "sectors": 0}
    r = np.radians(np.array(angles))
    R = float(np.hypot(np.cos(r).mean(), np.sin(r).mean()))
    std = math.degrees(math.sqrt(-2.0 * math.log(max(R, 1e-12))))
    sectors = {int(((a + 22.5) % 360) // 45) for a in angles}
    return {"circular_std": std, "sectors": len(sectors)}


def evaluate_i2v(videos: list[np.ndarray], images: list[np.ndarray],
                 cfg: MovingShapesConfig) -> dict[str, float | None]:
    """Generated clips against the first frames they started from: ``frame0_psnr`` (dB, mean),
    ``validity`` (share of valid frames, counting the objects of the given image),
    ``identity`` (share of first-frame objects keeping colour and shape) and
    ``smoothness`` (mean |second difference| of centroid paths, px)."""
    p0, valid, kept, smooth = [], [], [], []
    lo, _ = area_range(cfg)
    for v, img in zip(videos, images):
        p0.append(psnr(img[None], v[:1]))
        dets = detect_video(v)
        n = sum(d.area >= lo for d in detect_video(img[None])[0])
        valid += [frame_validity(d, cfg, n) for d in dets]
        kept += identity_kept(dets, cfg)
        if (s := motion_smoothness(dets)) is not None:
            smooth.append(s)
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    return {"frame0_psnr": mean(p0), "validity": mean(valid), "identity": mean(kept),
            "smoothness": mean(smooth)}
