"""Moving Shapes clips as files, with the metadata that makes their captions exact.

:func:`write_shapes` renders clips (:func:`vidiff.data.moving_shapes.generate_clip`) to lossless
video files, each with a JSON sidecar (same stem) holding its seed and config; the ``shapes``
captioner (:func:`shapes_caption`) regenerates the clip from them and describes the objects
seen over the row's frame span - so a clip cut out of the file gets the headings of its own
frames.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from ..data.moving_shapes import (MovingShapesConfig, ShapeClip, direction_word, generate_clip,
                                  make_caption)
from ..data.video_io import write_video

__all__ = ["write_shapes", "read_sidecar", "shapes_caption"]

_GENERATOR = "vidiff.moving_shapes"


def write_shapes(folder: str | os.PathLike, num: int, cfg: MovingShapesConfig | None = None,
                 seed: int = 0, suffix: str = ".mp4") -> list[Path]:
    """Write ``num`` clips ``shapes_0000.mp4``, ... (clip ``i`` is seed ``seed + i``) losslessly
    at the clip's fps into ``folder``, each with ``shapes_0000.json`` (``{"generator", "seed",
    "config"}``). Returns the video paths."""
    cfg = cfg or MovingShapesConfig()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(num):
        clip = generate_clip(cfg, seed + i)
        p = out / f"shapes_{i:04d}{suffix}"
        write_video(p, clip.video, fps=clip.fps, lossless=True)
        p.with_suffix(".json").write_text(json.dumps(
            {"generator": _GENERATOR, "seed": seed + i, "config": dataclasses.asdict(cfg)}))
        paths.append(p)
    return paths


def read_sidecar(path: str | os.PathLike) -> tuple[MovingShapesConfig, int]:
    """The config and seed of a Moving Shapes clip file, from its JSON sidecar. Raises
    ``ValueError`` (one line, naming the file) when there is none or it is not one of ours."""
    side = Path(path).with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no Moving Shapes sidecar {side.name} (write clips with "
                         "vidiff.dataproc.shapes.write_shapes)") from None
    except ValueError as e:
        raise ValueError(f"{side}: not JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("generator") != _GENERATOR:
        raise ValueError(f"{side}: not a Moving Shapes sidecar")
    fields = {f.name for f in dataclasses.fields(MovingShapesConfig)}
    conf = {k: tuple(v) if isinstance(v, list) else v
            for k, v in meta.get("config", {}).items() if k in fields}
    return MovingShapesConfig(**conf), int(meta["seed"])


def _caption(clip: ShapeClip, start: int, end: int) -> str:
    """The caption of frames ``[start, end)``: each object's heading over its first step."""
    f = min(max(start, 0), clip.trajectories.shape[1] - 1)
    if end - start > 1 and f + 1 < clip.trajectories.shape[1]:
        heads = clip.trajectories[:, f + 1] - clip.trajectories[:, f]
    else:
        heads = clip.velocities
    dirs = [direction_word(float(h[0]), float(h[1])) for h in np.asarray(heads)]
    return make_caption(clip.colors, clip.shapes, dirs)


def shapes_caption(row: dict) -> str:
    """The exact caption of a row's Moving Shapes clip (from the file's sidecar), e.g. ``"a red
    circle moving up-left and a blue square moving down"``."""
    cfg, seed = read_sidecar(row["path"])
    clip = generate_clip(cfg, seed)
    s, e = row.get("start_frame"), row.get("end_frame")
    start = 0 if s is None or s != s else int(s)
    end = cfg.num_frames if e is None or e != e else int(e)
    return _caption(clip, start, end)
