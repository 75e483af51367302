"""Prompt adherence of generated Moving Shapes clips: does the clip show what its prompt asked
for - the colour, the shape, the direction of motion - and do objects move at all.

Objects are found by the analytic detector (:mod:`vidiff.evaluation.detector`) and prompts are
read back by :func:`~vidiff.data.captions.parse_objects`, so every wording of
:mod:`vidiff.data.captions` (held-out ones included) is understood.
"""

from __future__ import annotations

import numpy as np

from ..data.captions import HELD_OUT_COMBOS, parse_objects
from .detector import detect_video
from .metrics import object_adherence, tracks_by_color

__all__ = ["prompt_adherence", "mean_speed"]

def mean_speed(videos: list[np.ndarray], min_area: int = 3) -> float | None:
    """Mean centroid displacement (px per frame) of the objects tracked by colour in uint8
    ``(F, H, W, 3)`` clips, over consecutive frames where the object is seen; ``None`` when no
    object is seen twice in a row."""
    steps = []
    for v in videos:
        for track in tracks_by_color(detect_video(v, min_area)).values():
            for a, b in zip(track[:-1], track[1:]):
                if a is not None and b is not None:
                    steps.append(float(np.hypot(b.centroid[0] - a.centroid[0],
                                                b.centroid[1] - a.centroid[1])))
    return float(np.mean(steps)) if steps else None


def prompt_adherence(videos: list[np.ndarray], prompts: list[str], motion: bool = True,
                     min_area: int = 3) -> dict:
    """Colour, shape and (with ``motion``) direction adherence of ``videos[i]`` to
    ``prompts[i]``, averaged over every object the prompts name: ``{"color", "shape",
    "direction", "num_objects"}``, plus the same for the objects of a held-out colour-shape
    combination (``"held_out"``) and for the others (``"seen"``).

    Raises:
        ValueError: different numbers of videos and prompts, or a prompt naming no object.
    """
    if len(videos) != len(prompts):
        raise ValueError(f"{len(videos)} videos for {len(prompts)} prompts")
    rows: list[tuple[bool, dict]] = []
    for v, p in zip(videos, prompts):
        objects = parse_objects(p)
        if not objects:
            raise ValueError(f"prompt {p!r} names no Moving Shapes object (colour and shape)")
        dets = detect_video(v, min_area)
        for c, s, d in objects:
            rows.append((f"{c} {s}" in HELD_OUT_COMBOS,
                         object_adherence(dets, c, s, d if motion else None)))

    def summary(sel: list[dict]) -> dict:
        mean = lambda k: (float(np.mean([r[k] for r in sel]))  # noqa: E731
                          if sel and sel[0][k] is not None else None)
        return {"color": mean("color"), "shape": mean("shape"), "direction": mean("direction"),
                "num_objects": len(sel)}

    return {**summary([r for _, r in rows]),
            "seen": summary([r for h, r in rows if not h]),
            "held_out": summary([r for h, r in rows if h])}
