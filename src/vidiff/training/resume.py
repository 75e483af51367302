"""What a resume must agree with: the checkpoint's model, the batch per step, and the log.

A run resumes exactly only with the model it was trained with and the same samples per
optimiser step (batch x accumulation x processes); anything else is a one-line error saying
what the checkpoint holds, before any weight is touched. After a kill, the log keeps the rows
of steps that are run again: they are dropped when the run resumes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from torch import Tensor

__all__ = ["check_model", "check_batch", "truncate_log"]


def check_model(ckpt: Path, saved: dict[str, Tensor], own: dict[str, tuple[int, ...]],
                config: dict) -> None:
    """Raise ``ValueError`` when the checkpoint's weights ``saved`` do not fit a model with
    parameter shapes ``own`` (its config ``config``), naming the config fields that differ."""
    if {k: tuple(v.shape) for k, v in saved.items()} == own:
        return
    theirs = json.loads((ckpt / "config.json").read_text()) if (ckpt / "config.json").is_file() \
        else {}
    mine = json.loads(json.dumps(config))  # tuples as lists, as config.json holds them
    diff = [f"{k}={theirs[k]!r} (this recipe: {mine.get(k)!r})" for k in sorted(theirs)
            if not k.startswith("_") and theirs[k] != mine.get(k)]
    what = theirs.get("_class_name", "another model")
    raise ValueError(f"{ckpt} holds a {what} that differs from this recipe's model"
                     f"{': ' + ', '.join(diff) if diff else ''}; resume with the recipe it was "
                     "trained with, or start a new train.out_dir (train.init_from fine-tunes from it)")


def check_batch(ckpt: Path, state: dict, batch_size: int, grad_accum: int, world: int,
                allow_change: bool) -> str | None:
    """Raise ``ValueError`` when the samples per step differ from the checkpoint's (unless
    ``allow_change``: then return the warning to log). Checkpoints written before the batch was
    recorded are taken as they are."""
    if "batch_size" not in state:
        return None
    old = (int(state["batch_size"]), int(state.get("grad_accum", 1)),
           int(state.get("world_size", 1)))
    new = (batch_size, grad_accum, world)
    if old[0] * old[1] * old[2] == new[0] * new[1] * new[2]:
        return None
    msg = (f"{ckpt} was trained with {old[0]} x {old[1]} x {old[2]} = {old[0] * old[1] * old[2]} "
           f"samples per step (batch x accumulation x processes), this run has {new[0]} x "
           f"{new[1]} x {new[2]} = {new[0] * new[1] * new[2]}")
    if allow_change:
        return msg + "; continuing as train.allow_batch_change asks"
    raise ValueError(msg + "; use the same, or set train.allow_batch_change=true to go on with "
                     "the new batch")


def truncate_log(log_file: Path, step: int) -> int:
    """Drop the rows of ``log_file`` (the trainer's CSV) after ``step``; returns how many."""
    if not log_file.is_file():
        return 0
    with open(log_file, newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = rows and list(rows[0].keys())
    keep = [r for r in rows if r.get("step") and int(float(r["step"])) <= step]
    if len(keep) == len(rows):
        return 0
    with open(log_file, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, restval="")
        w.writeheader()
        w.writerows(keep)
    return len(rows) - len(keep)
