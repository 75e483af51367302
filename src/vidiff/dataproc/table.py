"""Tables of clips: reading and writing CSV / Parquet, the columns every step relies on, a clip's
frame range and identity, and the journal that makes a step resumable.

A table has one row a clip and at least a ``path`` column (relative paths are taken relative to
the table's folder and written back absolute). Steps add columns; the ones they share:

``ok`` / ``reason`` / ``detail``
    whether the clip is usable; if not, a short code (``empty``, ``truncated``, ...) and a message.
    Later steps pass rows with ``ok == False`` through untouched.
``start`` / ``end`` (seconds) and ``start_frame`` / ``end_frame`` (end exclusive)
    the clip's span in the file, times measured from the first frame; no span is the whole file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable

from .deps import need, pandas

__all__ = ["TABLE_SUFFIXES", "check_table_out", "read_table", "write_table", "to_records",
           "from_records", "native", "is_ok", "clip_range", "clip_key", "row_uniform",
           "fingerprint", "Journal", "bad_row"]

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: a table is {', '.join(TABLE_SUFFIXES)}, not "
                         f"{suffix or 'a file without a suffix'}")
    return "parquet" if suffix in (".parquet", ".pq") else "csv"


def check_table_out(path: str | os.PathLike) -> Path:
    """``path`` if a table can be written there (a table suffix, a writable folder), else a
    one-line ``ValueError`` - checked before the work that fills it."""
    from ..data.formats import check_output_path

    _kind(Path(path))
    return check_output_path(path)


def read_table(path: str | os.PathLike, need_path: bool = True):
    """A table of clips as a pandas DataFrame (CSV: ``,`` or, for ``.tsv``, tab; Parquet with
    pyarrow). Relative ``path`` cells become absolute, relative to the table's folder. Raises
    ``FileNotFoundError`` / ``ValueError`` (one line, naming the file) for a missing, unreadable
    or path-less table."""
    pd, p = pandas(), Path(path)
    kind = _kind(p)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such table")
    try:
        if kind == "parquet":
            need("pyarrow")
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",",
                             keep_default_na=True, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as e:
        if isinstance(e, ImportError):
            raise
        raise ValueError(f"{p}: not a readable {kind} table ({' '.join(str(e).split())})") from e
    except pd.errors.ParserError as e:  # pragma: no cover - a ValueError in pandas 2+
        raise ValueError(f"{p}: not a readable CSV table ({e})") from e
    if need_path:
        if "path" not in df.columns:
            raise ValueError(f"{p}: the table needs a 'path' column (its columns: "
                             f"{', '.join(map(str, df.columns)) or 'none'})")
        base = p.resolve().parent
        df["path"] = [_absolute(base, cell, p, i) for i, cell in enumerate(df["path"])]
    return df


def _absolute(base: Path, cell, table: Path, i: int) -> str:
    if not isinstance(cell, str) or not cell.strip():
        raise ValueError(f"{table}: row {i + 1}: empty 'path' cell")
    q = Path(cell.strip()).expanduser()
    return os.path.abspath(q if q.is_absolute() else base / q)


def write_table(df, path: str | os.PathLike) -> Path:
    """Write ``df`` as CSV or Parquet (by suffix) atomically: a temporary file renamed over
    ``path``, so a kill never leaves half a table."""
    p = Path(path)
    kind = _kind(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    if kind == "parquet":
        need("pyarrow")
        obj = [c for c in df.columns if df[c].dtype == object]  # mixed cells: NaN -> None
        if obj:
            df = df.assign(**{c: df[c].where(df[c].notna(), None) for c in obj})
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False, sep="\t" if p.suffix.lower() == ".tsv" else ",")
    os.replace(tmp, p)
    return p


def native(value):
    """A JSON-able Python value for a cell (numpy scalars and arrays, NaN kept as NaN)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [native(v) for v in value]
    return value


def to_records(df) -> list[dict]:
    """The rows of ``df`` as plain dicts (missing cells as ``None``)."""
    pd = pandas()
    return [{k: (None if not isinstance(v, (list, dict)) and pd.isna(v) else native(v))
             for k, v in row.items()} for row in df.to_dict("records")]


def from_records(records: list[dict], first: Iterable[str] = ()):
    """A DataFrame of ``records``: the columns ``first`` (those present) in that order, then the
    others in order of first appearance."""
    order: dict[str, None] = {}
    for r in records:
        order.update(dict.fromkeys(r))
    if not records:
        return pandas().DataFrame(columns=list(dict.fromkeys(first)))
    cols = [c for c in first if c in order] + [c for c in order if c not in set(first)]
    return pandas().DataFrame.from_records(records, columns=cols)


def is_ok(row: dict) -> bool:
    """Whether a row is a usable clip (``ok`` missing or true)."""
    ok = row.get("ok", True)
    return ok is None or (ok is not False and str(ok).lower() not in ("false", "0"))


def bad_row(row: dict, step: str, reason: str, detail: str) -> dict:
    """``row`` marked unusable by ``step``: ``ok=False``, ``reason``, ``detail``."""
    return {**row, "ok": False, "reason": reason, "detail": f"{step}: {detail}"}


def clip_range(row: dict) -> tuple[int, int]:
    """``(start_frame, end_frame)`` of a row's clip (end exclusive); the whole file without
    ``start_frame`` / ``end_frame`` cells. Raises ``ValueError`` naming the file when neither
    the span nor ``num_frames`` is known."""
    s, e = row.get("start_frame"), row.get("end_frame")
    n = row.get("num_frames")
    if s is None or e is None or _nan(s) or _nan(e):
        if n is None or _nan(n):
            raise ValueError(f"{row.get('path')}: no 'num_frames' or 'start_frame'/'end_frame' "
                             "(run `vidiff data scan` first)")
        return 0, int(n)
    return int(s), int(e)


def _nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def clip_key(row: dict, base: str | None = None) -> str:
    """A clip's identity: its file and frame span (independent of row order and engine). With
    ``base`` (the table's folder) a file inside it is named by its path relative to it, in
    ``/`` form, so the identity - and the draws keyed on it - survive moving the folder of
    table and videos together; other files by their absolute path."""
    s, e = (row.get("start_frame"), row.get("end_frame"))
    span = "" if s is None or e is None or _nan(s) or _nan(e) else f"|{int(s)}|{int(e)}"
    path = str(row["path"])
    if base:
        rel = os.path.relpath(path, base)
        if not rel.startswith(os.pardir) and not os.path.isabs(rel):
            path = Path(rel).as_posix()
    return f"{path}{span}"


def row_uniform(seed: int, key: str, salt: str = "") -> float:
    """A uniform number in ``[0, 1)`` that is a pure function of ``(seed, key, salt)`` (SHA-256):
    the same for a clip whatever the row order, worker or engine."""
    h = hashlib.sha256(f"{seed}\0{salt}\0{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def fingerprint(*parts) -> str:
    """A short digest of JSON-able ``parts`` (a step, its options and its input rows)."""
    text = json.dumps(native(list(parts)), sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """A step's progress next to its output, ``.<out name>.journal``: a header line with the
    fingerprint of the step's inputs and options, then one JSON line per finished input row,
    ``{"key": i, "rows": [...]}``, flushed as it finishes. A rerun with the same fingerprint
    skips the rows found there (a line cut short by a kill - one without its ``\n`` too - is
    dropped, its row redone); another fingerprint
    starts over. It stays after the step (a rerun is then instant); delete it to recompute."""

    def __init__(self, out: str | os.PathLike, fp: str):
        self.out = Path(out)
        self.path = self.out.with_name(f".{self.out.name}.journal")
        self.fp = fp

    def load(self) -> dict[int, list[dict]]:
        """Rows already done: input row key -> its output rows."""
        self._resume = False
        if not self.path.is_file():
            return {}
        done, good = {}, 0
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        try:
            head = json.loads(lines[0])
        except ValueError:
            head = {}
        if len(lines) < 2:  # the header itself was cut short
            return {}
        if head.get("fingerprint") != self.fp:
            log.warning("%s: the input or the options changed since the last run: starting over",
                        self.out)
            return {}
        self._resume, good = True, len(lines[0]) + 1
        for line in lines[1:-1]:  # lines[-1]: what follows the last "\n" - cut short or empty
            try:
                entry = json.loads(line)
                done[int(entry["key"])] = entry["rows"]
            except (ValueError, KeyError, TypeError):
                break  # the line a kill cut short, and anything after it
            good += len(line) + 1
        with open(self.path, "r+b") as f:
            f.truncate(min(good, os.path.getsize(self.path)))
        return done

    def open(self) -> None:
        """Start writing: append to the journal :meth:`load` accepted, or begin a new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not getattr(self, "_resume", False):
            with open(self.path, "w") as f:
                f.write(json.dumps({"fingerprint": self.fp}) + "\n")
        self._f = open(self.path, "a")

    def add(self, key: int, rows: list[dict]) -> None:
        """Record that input row ``key`` gave ``rows`` (flushed at once)."""
        self._f.write(json.dumps({"key": key, "rows": native(rows)}, allow_nan=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()
            self._f = None
