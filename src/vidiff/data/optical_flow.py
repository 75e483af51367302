"""Dense optical flow of a clip at its own size with OpenCV's DIS (Kroeger et al. 2016, medium
preset; no model to download): what a real video gives Tora's trajectory training
(``data.flow: true``) in place of Moving Shapes' exact flow. OpenCV comes with the ``data``
extra."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["dis_flow", "clip_flow"]

_DIS: dict = {}


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError(f"dense flow of real videos needs opencv-python ({e}): pip install "
                          "vidiff[data]") from e
    if cv2.getNumThreads() != 1:  # one thread: the loaders parallelise over clips
        cv2.setNumThreads(1)
    return cv2


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Forward flow from grey uint8 frame ``a`` ``(h, w)`` to ``b``: float32 ``(h, w, 2)``,
    ``(dx, dy)`` in pixels (``b(x + dx, y + dy) ~ a(x, y)``)."""
    if "dis" not in _DIS:  # one per process: building it is not free
        cv = _cv2()
        _DIS["dis"] = cv.DISOpticalFlow_create(cv.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _DIS["dis"].calc(a, b, None)


def clip_flow(video: Tensor) -> Tensor:
    """The forward flow of every frame of a clip ``(3, F, H, W)`` in ``[-1, 1]`` to the next:
    ``(F, 2, H, W)`` float32 pixels, the last frame zeros (it has no next frame; the training
    condition shifts the flow one frame on, so that frame is never used)."""
    cv = _cv2()
    frames = ((video.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
    grey = [cv.cvtColor(np.ascontiguousarray(f), cv.COLOR_RGB2GRAY) for f in frames]
    out = np.zeros((len(grey), 2, *grey[0].shape), np.float32)
    for f in range(len(grey) - 1):
        out[f] = dis_flow(grey[f], grey[f + 1]).transpose(2, 0, 1)
    return torch.from_numpy(out)
