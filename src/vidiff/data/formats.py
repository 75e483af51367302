"""Video file types and output paths: one list of what vidiff reads and one of what it writes,
used by every command, dataset and message, and the checks an output path gets before the work
that produces it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["READABLE_SUFFIXES", "WRITABLE_SUFFIXES", "FPS_RANGE", "check_writable",
           "check_output_path"]

#: frame rates a container can store (a vidiff.ranges range): every writer, ``--fps`` and
#: ``sample.fps`` use it
FPS_RANGE = "[0.001, 1000]"

#: what every command and dataset reads as video (folders are scanned for these)
READABLE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".3gp", ".mpg",
                     ".mpeg", ".ts", ".wmv", ".flv", ".ogv")
#: what :class:`VideoWriter` encodes (each one is readable too)
WRITABLE_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif")


def check_writable(path: str | os.PathLike) -> Path:
    """``path`` if :class:`VideoWriter` can encode its suffix, else a one-line ValueError."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise ValueError(f"{path}: cannot write {suffix or 'a file without a suffix'} videos; "
                         f"use {', '.join(WRITABLE_SUFFIXES)}")
    return check_output_path(path)


def check_output_path(path: str | os.PathLike) -> Path:
    """``path`` if a file can be created there (its folder exists or can be made, and is
    writable), else a one-line ValueError - checked before the work that produces it."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a folder; give a file name inside it")
    up = p.parent
    while not up.exists() and up != up.parent:
        up = up.parent
    if not up.is_dir():
        raise ValueError(f"{p}: cannot create it, {up} is a file, not a folder")
    if not os.access(up, os.W_OK):
        raise ValueError(f"{p}: cannot write in {up} (permission denied)")
    return p
