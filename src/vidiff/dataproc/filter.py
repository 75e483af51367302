"""``filter``: keep the clips a training set wants.

In order: rows not ``ok`` go (unless ``keep_bad``); ``where``, a pandas expression on the
columns (``"height >= 64 and duration >= 1 and flow < 20"``, see ``DataFrame.query``);
``camera``, the camera-motion kinds to keep (``static``, ``pan``, ``tilt``, ``zoom``,
``dynamic``; Tora §3.3 drops clips dominated by camera motion); then Tora's rule for violent
motion (§3.3): a clip with flow score ``s`` stays with probability ``1 - s / tora_scale``
(``tora_scale`` = 100 as in the paper; clipped to [0, 1]), applied to the clips whose score is
at least ``tora_above``. The score is the column ``tora_column``: by default ``flow_opensora``,
the flow on Open-Sora's scale that Tora's 100 refers to (see :mod:`.score`); rows not ok that
``keep_bad`` keeps are not subject to the rule. The draw is a hash of ``(seed, file, span)``,
the file named relative to the table's folder (``base``) when inside it, so the same clips stay
whatever the row order, the engine, the machine or where the folder of table and videos is
moved.
"""

from __future__ import annotations

import re

from .camera import CAMERA_KINDS
from .table import clip_key, is_ok, row_uniform

__all__ = ["filter_table", "tora_keep"]


def tora_keep(row: dict, seed: int, scale: float = 100.0,
              column: str = "flow_opensora", base: str | None = None) -> bool:
    """Tora's rule for one clip: kept with probability ``1 - row[column] / scale`` (clipped),
    drawn from ``(seed, clip identity)``. Raises ``ValueError`` when the row has no score."""
    flow = row.get(column)
    if flow is None or flow != flow:
        raise ValueError(f"{row.get('path')}: no {column!r} score for Tora's rule (run `vidiff "
                         "data score` first)")
    p = min(1.0, max(0.0, 1.0 - float(flow) / scale))
    return row_uniform(seed, clip_key(row, base), "tora") < p


def filter_table(df, where: str | None = None, camera: list[str] | None = None,
                 tora: bool = False, tora_scale: float = 100.0, tora_above: float = 0.0,
                 seed: int = 0, keep_bad: bool = False, source: str = "table",
                 tora_column: str = "flow_opensora", base: str | None = None):
    """The rows of DataFrame ``df`` that pass (see the module docs), index reset. Raises a
    one-line ``ValueError`` naming ``source`` and the column for an expression on a column the
    table lacks, a bad expression, an unknown camera kind, or (``tora``) no ``tora_column``."""
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
        if tora_column not in df.columns:
            raise ValueError(f"{source}: no {tora_column!r} column for Tora's rule (run `vidiff "
                             "data score`)")
        keep = [not is_ok(r) or r[tora_column] < tora_above
                or tora_keep(r, seed, tora_scale, tora_column, base)
                for r in df.to_dict("records")]
        df = df[keep]
    return df.reset_index(drop=True)
