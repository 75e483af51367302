"""Reading the files a checkpoint is made of, with a damaged or foreign file told as one line
naming it (``ValueError``), not a parser's traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

__all__ = ["read_json", "read_tensors"]


def read_json(path: str | os.PathLike, kind: type = dict) -> Any:
    """The JSON value in ``path``, which must be a ``kind`` (a mapping by default).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8 JSON, or not a ``kind``.
    """
    p = Path(path)
    try:
        value = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: damaged, not valid JSON ({e})") from e
    if not isinstance(value, kind):
        raise ValueError(f"{p}: expected a JSON {'object' if kind is dict else kind.__name__}, "
                         f"got {type(value).__name__}")
    return value


def read_tensors(path: str | os.PathLike, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never unpickles).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a damaged or truncated file, or not a safetensors file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    try:
        return load_file(str(p), device=device)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        if isinstance(e, (MemoryError, KeyboardInterrupt)):
            raise
        raise ValueError(f"{p}: damaged or not a safetensors file "
                         f"({' '.join(str(e).split())})") from e
