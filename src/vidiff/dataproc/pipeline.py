"""The steps as functions from a table file to a table file (what ``vidiff data STEP`` runs),
and :func:`run_pipeline`, which chains them from a folder of videos to a training list.

Every function takes an :class:`~vidiff.dataproc.engine.Engine` for the per-row work and
returns the DataFrame it wrote; a rerun resumes from the output's journal.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from .caption import caption_row
from .engine import Engine
from .filter import filter_table
from .hooks import load_callable
from .runner import run_step
from .scan import SCAN_COLUMNS, list_videos, scan_file
from .score import SCORE_COLUMNS, score_row
from .split import SPLIT_COLUMNS, split_row
from .table import check_table_out, is_ok, read_table, to_records, write_table
from .trajectories import TRAJECTORY_COLUMNS, trajectories_row

__all__ = ["check_dir", "scan_step", "split_step", "score_step", "filter_step", "caption_step",
           "trajectories_step", "run_pipeline", "check_hooks"]

log = logging.getLogger(__name__)


def check_hooks(specs) -> None:
    """Load every Python hook once here, so a misspelt module fails the step at once (one line)
    instead of every row; shell commands are checked when they run."""
    for spec in specs:
        load_callable(spec)


def check_dir(path, flag: str) -> str:
    """``path`` as an absolute folder that exists (made here) and is writable, else a one-line
    ``ValueError`` naming ``flag`` - checked before any row is processed."""
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot make the folder ({e.strerror or e})") from e
    if not os.access(p, os.W_OK):
        raise ValueError(f"{flag} {path}: cannot write in it (permission denied)")
    return os.path.abspath(p)


def _table_step(name: str, fn, columns, inp, out, engine: Engine, options: dict):
    df = read_table(inp)
    return run_step(name, functools.partial(fn, **options), to_records(df), out, engine,
                    options, [*df.columns, *columns])


def scan_step(folder, out, engine: Engine, verify: bool = False, all_files: bool = False):
    """``scan``: one row per video file under ``folder`` (see :func:`.scan.scan_file`), or per
    ``path`` of a table given instead of a folder."""
    if Path(folder).is_dir():
        rows = [{"path": p} for p in list_videos(folder, all_files)]
    elif not Path(folder).exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    else:
        rows = [{"path": r["path"]} for r in to_records(read_table(folder))]
    if not rows:
        raise FileNotFoundError(f"{folder}: no video files (use --all-files to probe every "
                                "file)")
    return run_step("scan", functools.partial(scan_file, verify=verify), rows, out, engine,
                    {"verify": verify}, SCAN_COLUMNS)


def split_step(inp, out, engine: Engine, min_duration: float = 1.0,
               max_duration: float | None = 10.0, threshold: float = 3.0,
               min_scene_len: int = 15, cut_dir: str | None = None):
    """``split``: scene cuts and clips (see :func:`.split.split_row`)."""
    if min_duration < 0 or (max_duration is not None and max_duration < min_duration):
        raise ValueError(f"need 0 <= --min-duration <= --max-duration, got {min_duration} and "
                         f"{max_duration}")
    return _table_step("split", split_row, SPLIT_COLUMNS, inp, out, engine, dict(
        min_duration=min_duration, max_duration=max_duration, threshold=threshold,
        min_scene_len=min_scene_len, cut_dir=check_dir(cut_dir, "--cut-dir") if cut_dir
        else None))


def score_step(inp, out, engine: Engine, method: str = "dis", flow_size: int = 128,
               num_pairs: int = 8, pair_seconds: float = 0.25, static_speed: float = 0.04,
               scorers: tuple = (), hook_timeout: float | None = None):
    """``score``: flow, camera motion and user scorers (see :func:`.score.score_row`)."""
    check_hooks(spec for _, spec in scorers)
    return _table_step("score", score_row, SCORE_COLUMNS, inp, out, engine, dict(
        method=method, flow_size=flow_size, num_pairs=num_pairs, pair_seconds=pair_seconds,
        static_speed=static_speed, scorers=tuple(tuple(s) for s in scorers),
        hook_timeout=hook_timeout))


def filter_step(inp, out, **options):
    """``filter`` (no per-row work, no engine): see :func:`.filter.filter_table`."""
    check_table_out(out)
    df = read_table(inp)
    kept = filter_table(df, source=str(inp), base=str(Path(inp).resolve().parent), **options)
    write_table(kept, out)
    log.info("filter: %d of %d rows kept -> %s", len(kept), len(df), out)
    return kept


def caption_step(inp, out, engine: Engine, captioner: str = "shapes", overwrite: bool = False,
                 hook_timeout: float | None = None):
    """``caption``: a caption per clip (see :func:`.caption.caption_row`)."""
    if captioner != "shapes":
        check_hooks([captioner])
    return _table_step("caption", caption_row, ("caption",), inp, out, engine, dict(
        captioner=captioner, overwrite=overwrite, hook_timeout=hook_timeout))


def trajectories_step(inp, out, engine: Engine, out_dir: str | None = None, **options):
    """``trajectories``: point tracks, one ``.npz`` a clip in ``out_dir`` (default: a folder
    ``<out stem>_tracks`` next to ``out``); see :func:`.trajectories.trajectories_row`."""
    out_dir = check_dir(out_dir or Path(out).with_name(Path(out).stem + "_tracks"),
                        "--tracks-dir")
    return _table_step("trajectories", trajectories_row, TRAJECTORY_COLUMNS, inp, out, engine,
                       dict(out_dir=out_dir, base=str(Path(inp).resolve().parent), **options))


def run_pipeline(folder, out_dir, engine: Engine, *, split: dict | None = None,
                 score: dict | None = None, filters: dict | None = None,
                 captioner: str | None = None, trajectories: dict | None = None,
                 table: str = "train.csv") -> dict[str, Path]:
    """scan -> split -> score -> filter -> caption (with a ``captioner``) -> trajectories
    (unless ``trajectories`` is ``False``), each step's table in ``out_dir`` (``scan.csv``,
    ``clips.csv``, ``scored.csv``, ``filtered.csv``, ``captioned.csv``, ``tracks/``), the last
    one copied to ``out_dir/table``. Options per step as keyword dicts. Returns the paths."""
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise ValueError(f"{d}: is a file; --out of `run` is a folder")
    d.mkdir(parents=True, exist_ok=True)
    paths = {"scan": d / "scan.csv", "split": d / "clips.csv", "score": d / "scored.csv",
             "filter": d / "filtered.csv"}
    scanned = scan_step(folder, paths["scan"], engine)
    if "ok" in scanned.columns and not any(is_ok({"ok": v}) for v in scanned["ok"]):
        reasons = ", ".join(sorted(set(map(str, scanned.get("reason", ["?"])))))
        log.warning("run: none of the %d file(s) in %s is usable (%s): the tables will be "
                    "empty; see %s", len(scanned), folder, reasons, paths["scan"])
    split_step(paths["scan"], paths["split"], engine, **(split or {}))
    score_step(paths["split"], paths["score"], engine, **(score or {}))
    last = filter_step(paths["score"], paths["filter"], **(filters or {}))
    src = paths["filter"]
    if captioner:
        paths["caption"] = d / "captioned.csv"
        last = caption_step(src, paths["caption"], engine, captioner)
        src = paths["caption"]
    if trajectories is not False:
        paths["trajectories"] = d / "tracked.csv"
        last = trajectories_step(src, paths["trajectories"], engine, str(d / "tracks"),
                                 **(trajectories or {}))
    paths["table"] = write_table(last, d / table)
    return paths
