"""The analytic Moving Shapes detector: nearest palette colour -> connected components ->
centroid, area and shape class. Works on any generated video, so quality is measured exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.moving_shapes import PALETTE

__all__ = ["Detection", "detect_frame", "detect_video", "label_components"]

_NAMES = list(PALETTE)
_COLORS = np.array([PALETTE[n] for n in _NAMES], np.float32)  # (K, 3)


@dataclass
class Detection:
    color: str
    shape: str
    area: int
    centroid: tuple[float, float]  # (x, y) pixels, pixel centres at +0.5
    fill: float  # area / bounding-box area


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a bool ``(H, W)`` mask: ``(labels, count)``, labels 1..count."""
    H, W = mask.shape
    labels = np.zeros((H, W), np.int32)
    count = 0
    ys, xs = np.nonzero(mask)
    for y0, x0 in zip(ys, xs):
        if labels[y0, x0]:
            continue
        count += 1
        stack = [(y0, x0)]
        labels[y0, x0] = count
        while stack:
            y, x = stack.pop()
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < H and 0 <= nx < W and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    stack.append((ny, nx))
    return labels, count


def _shape_class(fill: float) -> str:
    # square ~1.0, circle ~pi/4 = 0.785, triangle ~0.5 of their bounding boxes
    if fill > 0.89:
        return "square"
    if fill > 0.64:
        return "circle"
    return "triangle"


def detect_frame(frame: np.ndarray, min_area: int = 3, dark: float = 80.0) -> list[Detection]:
    """Objects in one uint8 ``(H, W, 3)`` frame, largest first per colour.

    A pixel is background when its brightest channel is below ``dark``; otherwise it takes the
    nearest palette colour. Components smaller than ``min_area`` pixels are noise.
    """
    f = frame.astype(np.float32)
    fg = f.max(-1) >= dark
    d = ((f[:, :, None, :] - _COLORS[None, None]) ** 2).sum(-1)  # (H, W, K)
    nearest = d.argmin(-1)
    out: list[Detection] = []
    for k, name in enumerate(_NAMES):
        m = fg & (nearest == k)
        if m.sum() < min_area:
            continue
        labels, n = label_components(m)
        for j in range(1, n + 1):
            ys, xs = np.nonzero(labels == j)
            area = len(ys)
            if area < min_area:
                continue
            bbox = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
            fill = area / bbox
            out.append(Detection(name, _shape_class(fill), area,
                                 (float(xs.mean() + 0.5), float(ys.mean() + 0.5)), float(fill)))
    return out


def detect_video(video: np.ndarray, min_area: int = 3) -> list[list[Detection]]:
    """Detections for each frame of a uint8 ``(F, H, W, 3)`` video."""
    return [detect_frame(fr, min_area) for fr in video]
