"""Camera motion from optical flow: static, pan, tilt, zoom - or dynamic, when much of the frame
moves but no single camera motion explains it (objects moving their own ways, parallax, shake).

After Open-Sora's OpenCV camera-motion detector (``tools/caption/camera_motion_detect.py``:
Farnebäck flow on frame pairs, a per-pair type from the median flow and the share of points
moving away from the centre, the clip's type by majority vote), with two changes that make it
hold on footage with large untextured areas (Moving Shapes' black canvas, sky, walls):

* only textured pixels vote (Sobel gradient above a threshold): flow is measured there and only
  extrapolated elsewhere;
* the global motion is a similarity transform (shift, zoom, rotation) fitted by RANSAC
  (``cv2.estimateAffinePartial2D``) instead of the median: the camera moved when one transform
  explains at least half of the textured pixels. A zoom must be supported all round the centre
  (three quadrants), since two objects moving apart fit a zoom too.

Per pair: ``static`` when fewer than half of the textured pixels move more than ``tau``;
``dynamic`` when no transform explains half of them; else ``translate`` (pan or tilt) or
``zoom`` by whichever displaces a pixel halfway to the corner more. The clip: the majority of
the pairs that are not ``dynamic`` if they are at least a third of all pairs, else ``dynamic``;
a translation is a ``pan`` when its mean shift is more horizontal than vertical, else a
``tilt``. Directions are those of the camera: content moving right is the camera panning left.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .deps import cv2

__all__ = ["CAMERA_KINDS", "pair_motion", "clip_motion"]

#: the values of the ``camera_motion`` column
CAMERA_KINDS = ("static", "pan", "tilt", "zoom", "dynamic")
_MAX_POINTS = 4000


def pair_motion(flow: np.ndarray, gray: np.ndarray, tau: float, edge: float = 20.0
                ) -> tuple[str, tuple[float, float]]:
    """Camera motion between two frames from the forward ``flow`` ``(h, w, 2)`` (pixels) of the
    first, ``gray`` ``(h, w)`` uint8: ``("static" | "translate" | "zoom" | "dynamic", v)`` where
    ``v`` is the shift of the frame centre (translate) or ``(zoom displacement, 0)`` (positive:
    zooming in), pixels. ``tau`` (pixels): smaller motions are no motion; ``edge``: the Sobel
    gradient a pixel needs to vote."""
    cv = cv2()
    h, w = gray.shape
    gx = cv.Sobel(gray, cv.CV_32F, 1, 0)
    gy = cv.Sobel(gray, cv.CV_32F, 0, 1)
    ys, xs = np.nonzero(np.hypot(gx, gy) > edge)
    if len(xs) < 20:
        return "static", (0.0, 0.0)  # nothing textured: no motion can be seen
    step = max(1, len(xs) // _MAX_POINTS)
    ys, xs = ys[::step], xs[::step]
    fl = flow[ys, xs].astype(np.float32)
    mag = np.hypot(fl[:, 0], fl[:, 1])
    if np.mean(mag > tau) < 0.5:
        return "static", (0.0, 0.0)
    src = np.stack([xs, ys], 1).astype(np.float32)
    m, inliers = cv.estimateAffinePartial2D(
        src, src + fl, method=cv.RANSAC, ransacReprojThreshold=max(1.0, 0.35 * float(
            np.median(mag))), maxIters=500, confidence=0.99, refineIters=10)
    if m is None or inliers.mean() < 0.5:
        return "dynamic", (0.0, 0.0)
    cx, cy = w / 2, h / 2
    shift = m @ np.array([cx, cy, 1.0]) - np.array([cx, cy])
    zoom = (math.sqrt(abs(np.linalg.det(m[:, :2]))) - 1) * math.hypot(cx, cy) / 2
    if max(math.hypot(*shift), abs(zoom)) < tau:
        return "static", (0.0, 0.0)
    if abs(zoom) > math.hypot(*shift):
        keep = inliers.ravel() > 0
        quadrants = set(zip((xs[keep] > cx).tolist(), (ys[keep] > cy).tolist()))
        return ("zoom", (float(zoom), 0.0)) if len(quadrants) >= 3 else ("dynamic", (0.0, 0.0))
    return "translate", (float(shift[0]), float(shift[1]))


def clip_motion(pairs: list[tuple[str, tuple[float, float]]]) -> tuple[str, str]:
    """``(camera_motion, camera_direction)`` of a clip from its pairs' :func:`pair_motion`:
    motion one of :data:`CAMERA_KINDS`, direction ``left`` / ``right`` (pan), ``up`` / ``down``
    (tilt), ``in`` / ``out`` (zoom) or ``""``."""
    if not pairs:
        return "static", ""
    votes = [p for p in pairs if p[0] != "dynamic"]
    if 3 * len(votes) < len(pairs):
        return "dynamic", ""
    kind, n = Counter(k for k, _ in votes).most_common(1)[0]
    if 2 * n <= len(votes):
        return "dynamic", ""
    v = np.mean([v for k, v in votes if k == kind], axis=0)
    if kind == "zoom":
        return "zoom", "in" if v[0] > 0 else "out"
    if kind == "translate":  # content moving right: the camera turns left
        if abs(v[0]) >= abs(v[1]):
            return "pan", "left" if v[0] > 0 else "right"
        return "tilt", "up" if v[1] > 0 else "down"
    return "static", ""
