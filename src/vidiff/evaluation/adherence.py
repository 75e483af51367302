"""Prompt adherence of generated Moving Shapes clips: does the clip show what its prompt asked
for - the colour, the shape, the direction of motion - and do objects move at all.

Objects are found by the analytic detector (:mod:`vidiff.evaluation.detector`) and prompts are
read back by :func:`~vidiff.data.captions.parse_objects`, so every wording of
:mod:`vidiff.data.captions` (held-out ones included) is understood.
"""

from __future__ import annotations

import numpy as np

from ..data.captions import HELD_OUT_COMBOS, parse_objects
from ..data.moving_shapes import direction_word
from .detector import Detection, detect_video
from .metrics import tracks_by_color

__all__ = ["object_adherence", "prompt_adherence", "mean_speed"]

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
