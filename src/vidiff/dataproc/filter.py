"""``filter``: keep the clips a training set wants.

In order: rows not ``ok`` go (unless ``keep_bad``); ``where``, a pandas expression on the
columns (``"height >= 64 and duration >= 1 and flow < 20"``, see ``DataFrame.query``);
``camera``, the camera-motion kinds to keep (``static``, ``pan``, ``tilt``, ``zoom``,
``dynamic``; Tora §3.3 drops clips dominated by camera motion); then Tora's rule for violent
motion (§3.3): a clip with flow score ``s`` stays with probability ``1 - s / tora_scale``
(``tora_scale`` = 100 as in the paper; clipped to [0, 1]), applied to the clips whose ``flow``
is at least ``tora_above``. The draw is a hash of ``(seed, file, span)``, so the same clips stay
whatever the row order, the engine or the machine.
"""

from __future__ import annotations

import re

from .camera import CAMERA_KINDS
from .table import clip_key, is_ok, row_uniform

__all__ = ["filter_table", "tora_keep"]


def tora_keep(row: dict, seed: int, scale: float = 100.0) -> bool:
    """Tora's rule for one clip: kept with probability ``1 - flow / scale`` (clipped), drawn
    from ``(seed, clip identity)``. Raises ``ValueError`` when the row has no ``flow``."""
    flow = row.get("flow")
    if flow is None or flow != flow:
        raise ValueError(f"{row.get('path')}: no 'flow' score for Tora's rule (run `vidiff "
                         "data score` first)")
    p = min(1.0, max(0.0, 1.0 - float(flow) / scale))
    return row_uniform(seed, clip_key(row), "tora") < p


def filter_table(df, where: str | None = None, camera: list[str] | None = None,
                 tora: bool = False, tora_scale: float = 100.0, tora_above: float = 0.0,
                 seed: int = 0, keep_bad: bool = False, source: str = "table"):
    """The rows of DataFrame ``df`` that pass (see the module docs), index reset. Raises a
    one-line ``ValueError`` naming ``source`` and the column for an expression on a column the
    table lacks, a bad expression, or an unknown camera kind."""
    if not keep_bad and "ok" in df.columns:
        df = df[[is_ok({"ok": v}) for v in df["ok"]]]
    if where:
        try:
            df = df.query(where, engine="python")
        except Exception as e:  # pandas raises many kinds for a bad expression
            missing = re.search(r"name '([^']+)' is not defined", str(e))
            if missing:
                raise ValueError(f"{source}: --where {where!r}: no column {missing[1]!r} "
                                 f"(columns: {', '.join(map(str, df.columns))})") from e
            raise ValueError(f"{source}: --where {where!r}: {type(e).__name__}: "
                             f"{' '.join(str(e).split())}") from e
    if camera:
        unknown = sorted(set(camera) - set(CAMERA_KINDS))
        if unknown:
            raise ValueError(f"--camera {','.join(unknown)}: kinds are "
                             f"{', '.join(CAMERA_KINDS)}")
        if "camera_motion" not in df.columns:
            raise ValueError(f"{source}: no 'camera_motion' column (run `vidiff data score`)")
        df = df[df["camera_motion"].isin(camera)]
    if tora:
        if "flow" not in df.columns:
            raise ValueError(f"{source}: no 'flow' column for Tora's rule (run `vidiff data "
                             "score`)")
        keep = [r["flow"] < tora_above or tora_keep(r, seed, tora_scale)
                for r in df.to_dict("records")]
        df = df[keep]
    return df.reset_index(drop=True)
