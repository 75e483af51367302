"""Moving Shapes evaluation of sampled clips: the setting a checkpoint was trained on, the
reference clips real data scores are measured on, and the report comparing the two."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..data.latents import cache_source
from ..data.moving_shapes import MovingShapesConfig, generate_clip
from .metrics import evaluate_videos

__all__ = ["REFERENCE_SEED", "MovingShapesEvalError", "reference_clips",
           "moving_shapes_config", "expected_counts", "evaluate_against_reference"]

#: Reference clip ``i`` is ``generate_clip(cfg, REFERENCE_SEED + i)``: every evaluation of a
#: setting compares against the same real clips.
REFERENCE_SEED = 10 ** 6


class MovingShapesEvalError(ValueError):
    """A checkpoint whose Moving Shapes setting cannot be recovered."""


def reference_clips(cfg: MovingShapesConfig, n: int) -> list[np.ndarray]:
    """``n`` real Moving Shapes clips of ``cfg``, uint8 ``(F, H, W, 3)``, always the same ones."""
    return [generate_clip(cfg, REFERENCE_SEED + i).video for i in range(n)]


def moving_shapes_config(experiment=None, size: int | None = None,
                         frames: int | None = None) -> MovingShapesConfig:
    """The Moving Shapes setting an experiment (a checkpoint's recipe) was trained on, read from
    its latent cache for a latent model; the defaults without one. ``size`` and ``frames``
    override. Raises :class:`MovingShapesEvalError` when a latent model's cache cannot be read
    or was not encoded from Moving Shapes."""
    cfg = experiment.data.moving_shapes if experiment is not None else MovingShapesConfig()
    if experiment is not None and experiment.data.kind == "latents":  # a cache of Moving Shapes
        d = experiment.data
        try:
            ms = cache_source(d).get("moving_shapes")
        except Exception as e:  # noqa: BLE001 - any unreadable cache: one clear line
            raise MovingShapesEvalError(f"{d.path}: cannot read the latent cache this model was "
                                        f"trained on ({e})") from e
        if ms is None:
            raise MovingShapesEvalError(f"{d.path} was not encoded from Moving Shapes")
        cfg = replace(MovingShapesConfig(**ms), num_frames=experiment.sample.num_frames
                      or d.num_frames)
    if size:
        cfg.size = size
    if frames:
        cfg.num_frames = frames
    return cfg


def expected_counts(experiment, labels: list[int]) -> list[int] | None:
    """Objects each clip must show when the labels are object counts (data.label=num_objects)."""
    if labels and experiment.data.label == "num_objects":
        return [lab + 1 for lab in labels]
    return None


def evaluate_against_reference(videos: list[np.ndarray], cfg: MovingShapesConfig,
                               expected: list[int] | None = None,
                               num_reference: int | None = None,
                               smoothness_ratio: bool = True) -> dict:
    """The metrics of ``videos`` (:meth:`ShapeMetrics.to_dict`) plus ``real_motion_smoothness``,
    that of ``num_reference`` reference clips (default: as many as the videos, at least 32), and
    with ``smoothness_ratio`` the ratio of the two (when both are measured)."""
    m = evaluate_videos(videos, cfg, expected_counts=expected)
    n = max(32, len(videos)) if num_reference is None else num_reference
    ref = evaluate_videos(reference_clips(cfg, n), cfg)
    report = {**m.to_dict(), "real_motion_smoothness": ref.motion_smoothness}
    if smoothness_ratio and m.motion_smoothness is not None and ref.motion_smoothness:
        report["smoothness_ratio"] = m.motion_smoothness / ref.motion_smoothness
    return report
