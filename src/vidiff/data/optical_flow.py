"""Dense optical flow of a clip at its own size with OpenCV's DIS (Kroeger et al. 2016, medium
preset; no model to download): what a real video gives Tora's trajectory training
(``data.flow: true``) in place of Moving Shapes' exact flow. OpenCV comes with the ``data``
extra."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..dataproc.deps import cv2
from .video_io import to_uint8

__all__ = ["dis_flow", "clip_flow"]

_DIS: dict = {}


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Forward flow from grey uint8 frame ``a`` ``(h, w)`` to ``b``: float32 ``(h, w, 2)``,
    ``(dx, dy)`` in pixels (``b(x + dx, y + dy) ~ a(x, y)``)."""
    if "dis" not in _DIS:  # one per process: building it is not free
        cv = cv2()
        _DIS["dis"] = cv.DISOpticalFlow_create(cv.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _DIS["dis"].calc(a, b, None)


def clip_flow(video: Tensor) -> Tensor:
    """The forward flow of every frame of a clip ``(3, F, H, W)`` in ``[-1, 1]`` to the next:
    ``(F, 2, H, W)`` float32 pixels, the last frame zeros (it has no next frame; the training
    condition shifts the flow one frame on, so that frame is never used)."""
    cv = cv2()
    frames = to_uint8(video)
    grey = [cv.cvtColor(np.ascontiguousarray(f), cv.COLOR_RGB2GRAY) for f in frames]
    out = np.zeros((len(grey), 2, *grey[0].shape), np.float32)
    for f in range(len(grey) - 1):
        out[f] = dis_flow(grey[f], grey[f + 1]).transpose(2, 0, 1)
    return torch.from_numpy(out)
