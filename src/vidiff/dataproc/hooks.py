"""User-supplied per-clip functions: the scorers of ``score`` (an aesthetic or OCR model) and the
captioners of ``caption``, given as text on the command line.

A hook is one of

* ``package.module:function`` or ``path/to/file.py:function`` - a Python callable, called with
  the clip's row (a dict: ``path``, ``start``, ``end``, ``start_frame``, ``end_frame``,
  ``fps``, ... - times in seconds) and returning a value (or a dict of column -> value);
* anything else - a shell command run once per clip. ``{column}`` is replaced by the row's
  value (shell-quoted), e.g. ``ocr.sh {path} {start} {end}``; without a placeholder the clip's
  path is appended. Its standard output's last line is the value (a number when it reads as
  one, a JSON object for several columns).

Each process loads a Python hook once.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

__all__ = ["HookError", "parse_named", "load_callable", "run_hook", "hook_columns"]

_FILE = re.compile(r"^(?P<file>[^\s:]+\.py):(?P<fn>[A-Za-z_]\w*)$")
_MODULE = re.compile(r"^(?P<mod>[A-Za-z_][\w.]*):(?P<fn>[A-Za-z_]\w*)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_LOADED: dict[str, Callable] = {}


def _one_line(e: Exception) -> str:
    """``Type: message`` on one line (a SyntaxError with its file line)."""
    where = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
    msg = e.msg if isinstance(e, SyntaxError) else str(e)
    return f"{type(e).__name__}: {' '.join(str(msg).split())}{where}"


class HookError(RuntimeError):
    """A user hook failed on one clip (the row is marked, the run goes on)."""


def parse_named(specs: list[str] | None, option: str) -> list[tuple[str, str]]:
    """``["aesthetic=mod:fn", ...]`` -> ``[("aesthetic", "mod:fn"), ...]``; a one-line
    ``ValueError`` naming ``option`` for an entry without ``NAME=``."""
    out = []
    for s in specs or []:
        name, sep, spec = s.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name.strip()) or not spec.strip():
            raise ValueError(f"{option} {s!r}: give NAME=HOOK (a column name, then "
                             "module:function, file.py:function or a shell command)")
        out.append((name.strip(), spec.strip()))
    return out


def load_callable(spec: str) -> Callable | None:
    """The Python callable ``spec`` names, or ``None`` when ``spec`` is a shell command. Raises
    ``ValueError`` (one line, naming the hook) when the module, file or function cannot be found
    or the module fails to load (a syntax error, an exception at import)."""
    if spec in _LOADED:
        return _LOADED[spec]
    m = _FILE.match(spec)
    if m:
        path = Path(m["file"]).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"hook {spec}: no such file {path}")
        name = f"vidiff_hook_{abs(hash(str(path)))}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except Exception as e:  # a user file: any error at import is the hook's
            sys.modules.pop(name, None)
            raise ValueError(f"hook {spec}: cannot load {path} ({_one_line(e)})") from e
    else:
        m = _MODULE.match(spec)
        if not m:
            return None
        try:
            module = importlib.import_module(m["mod"])
        except Exception as e:  # ImportError, or the module's own error at import
            raise ValueError(f"hook {spec}: cannot import {m['mod']} ({_one_line(e)})") from e
    fn = getattr(module, m["fn"], None)
    if not callable(fn):
        raise ValueError(f"hook {spec}: {m['fn']} is not a function of {module.__name__}")
    _LOADED[spec] = fn
    return fn


def _command(spec: str, row: dict) -> str:
    if not _PLACEHOLDER.search(spec):
        return f"{spec} {shlex.quote(str(row['path']))}"
    return _PLACEHOLDER.sub(lambda m: shlex.quote(str(row[m[1]])) if m[1] in row else m[0], spec)


def _parse_output(text: str) -> Any:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1]
    try:
        return float(last)
    except ValueError:
        pass
    if last.startswith("{"):
        try:
            return json.loads(last)
        except ValueError:
            pass
    return last


def run_hook(spec: str, row: dict, timeout: float | None = None) -> Any:
    """The hook's value for one clip (see the module docs). Raises :class:`HookError` (one
    line) when the callable raises, or the command fails or times out."""
    fn = load_callable(spec)
    if fn is not None:
        try:
            return fn(dict(row))
        except Exception as e:  # a user's function: any failure is that clip's
            raise HookError(f"{spec}: {type(e).__name__}: {e}") from e
    cmd = _command(spec, row)
    try:
        done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HookError(f"command timed out after {timeout:g} s: {cmd}") from e
    if done.returncode:
        err = (done.stderr.strip().splitlines() or [""])[-1]
        raise HookError(f"command exited with {done.returncode}: {cmd}" + (f" ({err})"
                                                                            if err else ""))
    return _parse_output(done.stdout)


def hook_columns(name: str, value: Any) -> dict:
    """The cells a hook's value fills: its dict, or ``{name: value}``."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    return {name: value}
