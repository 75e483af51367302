"""Registries: how a new system plugs in without an if-branch in shared code.

A registry maps a name (what a recipe writes as ``type:``) to a class or function. A paper's
module registers its parts with a decorator::

    from vidiff.registry import MODELS

    @MODELS.register()          # the class name, or MODELS.register("name")
    class MyNet(ModelMixin): ...

and a recipe names it: ``model: {type: MyNet, width: 64}``. Unknown names and unknown fields
are one-line :class:`RegistryError` messages that list what exists.

The registries:

* :data:`MODELS` - networks (denoisers, autoencoders): ``ModelMixin`` subclasses.
* :data:`TASKS` - what a run trains (``diffusion``, ``autoencoder``): :class:`~vidiff.training.tasks.Task`.
* :data:`DATASETS` - ``data.kind`` builders ``(data_config, seed) -> Dataset``.
* :data:`PIPELINES` - sampling pipelines, named in a checkpoint's ``model_index.json``.
* :data:`SAMPLERS` - ``sample_*(denoiser, schedule, z, ts, *, callback, ...)`` functions.
* :data:`COMPONENT_KINDS` - how a pipeline component of each kind (``model``, ``pipeline``)
  is saved to and loaded from its folder.
* :data:`ENCODERS` - condition encoders (class labels, fps; text encoders next) that turn a
  pipeline's arguments into the keyword conditioning a model declares it accepts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["Registry", "RegistryError", "MODELS", "TASKS", "DATASETS", "PIPELINES", "SAMPLERS",
           "ENCODERS", "COMPONENT_KINDS", "check_fields"]

T = TypeVar("T")


class RegistryError(ValueError):
    """An unknown registry name or config field (a one-line message naming what exists)."""


class Registry(Generic[T]):
    """A named table of classes or functions; ``what`` names the kind in error messages."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None, *, overwrite: bool = False
                 ) -> Callable[[T], T]:
        """Decorator: ``@REG.register()`` (the object's ``__name__``) or ``@REG.register("x")``."""
        def add(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            old = self._entries.get(key)
            if old is not None and old is not obj and not overwrite and not _redefinition(old, obj):
                raise RegistryError(f"{self.what} {key!r} is already registered "
                                    f"({self._entries[key]!r})")
            self._entries[key] = obj
            return obj
        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise RegistryError(f"unknown {self.what} {name!r}; known: {sorted(self._entries)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())


def _redefinition(old: Any, new: Any) -> bool:
    """The same definition again (its module re-imported or reloaded), not a name clash."""
    return (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
        getattr(new, "__module__", None), getattr(new, "__qualname__", None))


def check_fields(config_class: type, fields: dict[str, Any], where: str) -> None:
    """Raise :class:`RegistryError` naming the valid fields when ``fields`` has unknown keys."""
    valid = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(fields) - valid
    if unknown:
        raise RegistryError(f"{where}: unknown config keys {sorted(unknown)}; valid: "
                            f"{sorted(valid)}")


MODELS: Registry[type] = Registry("model type")
TASKS: Registry[type] = Registry("task")
DATASETS: Registry[Callable[..., Any]] = Registry("data.kind")
PIPELINES: Registry[type] = Registry("pipeline")
SAMPLERS: Registry[Callable[..., Any]] = Registry("sampler")
ENCODERS: Registry[type] = Registry("condition encoder")
COMPONENT_KINDS: Registry[type] = Registry("component kind")
