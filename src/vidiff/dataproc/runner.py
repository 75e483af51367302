"""Running one step over a table: rows not yet done go to the engine, each finished row is
journaled at once, and the output table is written (atomically) when all are done. A killed run
resumes where it stopped: the rows it finished are not processed again. A row that a user hook
failed on, or whose worker process died (reasons in :data:`RETRIED`), is written to the table
but not journaled: a rerun tries it again (a model that was missing, a crash from memory).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

from .engine import Engine
from .table import Journal, check_table_out, fingerprint, from_records, is_ok, write_table

__all__ = ["RETRIED", "run_step"]

#: reasons a step gives a row it may well finish on a rerun
RETRIED = frozenset({"scorer_failed", "caption_failed", "worker_crashed"})

log = logging.getLogger(__name__)


def run_step(name: str, fn: Callable[[dict], list], rows: list[dict], out: str | os.PathLike,
             engine: Engine, options: dict, columns: Sequence[str] = ()):
    """Apply the row function ``fn`` (built from ``options``, which with ``name`` and ``rows``
    make the journal's fingerprint) to ``rows`` on ``engine``, skipping the rows the journal of
    ``out`` already holds; write the result to ``out`` (CSV or Parquet) with the input's
    columns first, then ``columns``. Returns the DataFrame written."""
    out = check_table_out(out)
    journal = Journal(out, fingerprint(name, options, rows))
    done = journal.load()
    pending = [(k, r) for k, r in enumerate(rows) if k not in done]
    if done:
        log.info("%s: resuming, %d of %d rows already done", name, len(rows) - len(pending),
                 len(rows))
    journal.open()
    try:
        for key, result in engine.map(fn, pending, desc=name, total=len(rows)):
            if not (is_ok(rows[key]) and any(not is_ok(r) and r.get("reason") in RETRIED
                                             for r in result)):
                journal.add(key, result)
            done[key] = result
    finally:
        journal.close()
    records = [r for k in range(len(rows)) for r in done[k]]
    first = list(dict.fromkeys([c for r in rows[:1] for c in r] + list(columns)))
    df = from_records(records, first)
    write_table(df, out)
    bad = sum(not is_ok(r) for r in records)
    log.info("%s: %d rows in, %d out%s -> %s", name, len(rows), len(records),
             f" ({bad} not ok)" if bad else "", out)
    return df
