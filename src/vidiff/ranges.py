"""Allowed ranges of numeric settings, declared once next to the setting and checked where a
value enters (a recipe, ``--set``, a command-line option, a sampler option).

A range is a short string: one-sided (``">= 1"``, ``"> 0"``) or an interval (``"[0, 1]"``,
``"(0, 0.5]"``, ``"[0, 1)"``). A config dataclass declares it on the field::

    batch_size: int = ranged(8, ">= 1")
    min_objects: int = ranged(1, ">= 0", le="max_objects")   # and <= another field

and :func:`vidiff.config.from_dict` checks every declared range (each element of a tuple field)
with a one-line message naming the field, the value and the range:
``config.train.batch_size must be >= 1, got 0``. The value must also be finite.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["ranged", "field_range", "within", "describe", "range_message", "check_range"]

_ONE_SIDED = (">=", "<=", ">", "<")


def ranged(default: Any, spec: str | None = None, *, le: str | None = None,
           lt: str | None = None) -> Any:
    """A dataclass field with default ``default`` whose value (each element, for a tuple) must
    be finite and lie in ``spec`` (``None``: any finite number); ``le`` / ``lt`` name a field of
    the same dataclass it must be ``<=`` / ``<`` (checked when a config is read)."""
    if spec is not None:
        _parse(spec)  # a bad declaration fails at import, not when a user hits it
    meta = {"range": spec, **{k: v for k, v in (("le", le), ("lt", lt)) if v is not None}}
    return dataclasses.field(default=default, metadata=meta)


def field_range(cls: type, name: str) -> str | None:
    """The range declared on field ``name`` of dataclass ``cls`` (``None``: none declared)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("range")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _parse(spec: str) -> tuple[float, bool, float, bool]:
    """``(lo, lo_open, hi, hi_open)`` of a range string (infinite ends are open)."""
    s = spec.strip()
    for op in _ONE_SIDED:
        if s.startswith(op):
            x = float(s[len(op):])
            if op[0] == ">":
                return x, op == ">", math.inf, True
            return -math.inf, True, x, op == "<"
    if s[:1] in "[(" and s[-1:] in "])" and "," in s:
        lo, hi = (float(p) for p in s[1:-1].split(","))
        if lo > hi:
            raise ValueError(f"range {spec!r}: empty")
        return lo, s[0] == "(", hi, s[-1] == ")"
    raise ValueError(f"range {spec!r} is not '>= x', '> x', '<= x', '< x' or an interval "
                     "like '[lo, hi)'")


def within(value: Any, spec: str | None) -> bool:
    """Whether the number ``value`` is finite and in ``spec`` (``None``: any finite number)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(v):
        return False
    if spec is None:
        return True
    lo, lo_open, hi, hi_open = _parse(spec)
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def describe(spec: str) -> str:
    """``">= 1"`` or ``"in [0, 1]"``: what follows "must be" in a message."""
    s = spec.strip()
    return s if s.startswith(_ONE_SIDED) else f"in {s}"


def range_message(name: str, value: Any, spec: str | None) -> str:
    """``"{name} must be {range}, got {value}"`` (one line; ``value`` as given, a number or the
    text a user typed)."""
    what = describe(spec) if spec is not None else "a finite number"
    return f"{name} must be {what}, got {value}"


def check_range(name: str, value: Any, spec: str | None, error: type = ValueError) -> None:
    """Raise ``error`` (one line, see :func:`range_message`) unless ``value`` is in ``spec``."""
    if not within(value, spec):
        raise error(range_message(name, value, spec))


def build_checked(cls: type, data: dict[str, Any], where: str, error: type = ValueError) -> Any:
    """Dataclass ``cls`` from a mapping: unknown keys, and values (each element of a list) out
    of their field's declared range, are one-line ``error``s naming ``where``; lists become
    tuples (JSON has no tuples)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise error(f"{where}: unknown config keys {sorted(unknown)}; valid: {sorted(fields)}")
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    for k, v in data.items():
        spec = fields[k].metadata.get("range")
        if spec and v is not None:
            for item in v if isinstance(v, tuple) else (v,):
                check_range(f"{where}.{k}", item, spec, error)
    return cls(**data)
