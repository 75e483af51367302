"""``save_pretrained`` / ``from_pretrained`` for every vidiff model: ``config.json`` plus
``model.safetensors``. Loading never unpickles."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import save_file
from torch import nn

from ..devices import resolve_device
from ..files import read_json, read_tensors
from ..ranges import build_checked
from ..registry import MODELS, check_fields

__all__ = ["ModelMixin", "MODELS", "load_model", "build_model", "atomic_write"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so a kill never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ModelMixin(nn.Module):
    """Base of vidiff models. Subclasses set ``config_class`` (a dataclass) and take it as their
    only constructor argument."""

    config_class: ClassVar[type]
    #: the keyword conditions ``forward`` takes besides ``(x, t)`` (``class_labels``, ``fps``,
    #: ``frame_mask``, ``context``, ...): pipelines and tasks pass exactly these, read from here
    accepted_conditions: frozenset[str] = frozenset()
    #: classes of a class-conditional model (its null class for guidance is this number)
    num_classes: int | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        """Every subclass that sets its own ``config_class`` is a :data:`~vidiff.registry.MODELS`
        entry under its class name (wrappers made on the fly, such as FSDP2's, are not)."""
        super().__init_subclass__(**kw)
        if "config_class" in cls.__dict__:
            MODELS.register(cls.__name__)(cls)

    @classmethod
    def model_class(cls) -> type["ModelMixin"]:
        """The registered class this model is (itself, or the class a wrapper was made from)."""
        return next(c for c in cls.__mro__ if "config_class" in c.__dict__)

    @property
    def sample_shape(self) -> tuple[int | None, int | None]:
        """``(num_frames, sample_size)`` of the clip a denoiser generates, in its own space
        (latent frames / size for a latent model): its config's ``num_frames`` and
        ``sample_size`` fields where the config declares them, else ``None``."""
        names = {f.name for f in dataclasses.fields(self.config)}
        return tuple(self.config.__dict__[k] if k in names else None  # type: ignore[return-value]
                     for k in ("num_frames", "sample_size"))

    @sample_shape.setter
    def sample_shape(self, value: tuple[int, int]) -> None:
        names = {f.name for f in dataclasses.fields(self.config)}
        for k, v in zip(("num_frames", "sample_size"), value):
            if k in names:
                setattr(self.config, k, v)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def config_dict(self) -> dict[str, Any]:
        return {"_class_name": self.model_class().__name__, **dataclasses.asdict(self.config)}

    def save_pretrained(self, directory: str | os.PathLike, state_dict: dict | None = None,
                        dtype: torch.dtype | None = None) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically);
        ``dtype`` (e.g. ``torch.float16``) stores the floating tensors smaller - loading casts
        them back to the model's dtype."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sd = {k: v.detach().contiguous().cpu() for k, v in (state_dict or self.state_dict()).items()}
        if dtype is not None:
            sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
        atomic_write(d / WEIGHTS_NAME, lambda p: save_file(sd, str(p)))
        self.save_config(d)

    def save_config(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` alone (atomically)."""
        text = json.dumps(self.config_dict(), indent=2)
        atomic_write(Path(directory) / CONFIG_NAME, lambda p: Path(p).write_text(text))

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        cfg = {k: v for k, v in config.items() if not k.startswith("_")}
        check_fields(cls.config_class, cfg, cls.__name__)  # (a RegistryError, as types are)
        return cls(build_checked(cls.config_class, cfg, cls.__name__))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu"):
        """Load a model written by :meth:`save_pretrained` (called on the base class, the
        config's ``_class_name`` picks the subclass)."""
        d = Path(directory)
        if not (d / CONFIG_NAME).is_file() or not (d / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{d} is not a vidiff model directory "
                                    f"(needs {CONFIG_NAME} and {WEIGHTS_NAME})")
        config = read_json(d / CONFIG_NAME)
        name = config.get("_class_name")
        target = MODELS.get(name) if name is not None else cls
        if cls is not ModelMixin and not issubclass(target, cls):
            raise ValueError(f"{d} holds a {target.__name__}, not a {cls.__name__}")
        model = target.from_config(config)
        sd = read_tensors(d / WEIGHTS_NAME, device=str(resolve_device(map_location)))
        own = model.state_dict()
        missing, extra = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
        wrong = [k for k in own if k in sd and own[k].shape != sd[k].shape]
        if missing or extra or wrong:
            what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                    else f"{wrong[0]} is {tuple(sd[wrong[0]].shape)}, the config makes "
                    f"{tuple(own[wrong[0]].shape)}")
            raise ValueError(f"{d}: {WEIGHTS_NAME} does not fit its {CONFIG_NAME} ({what}; "
                             f"{len(missing) + len(extra) + len(wrong)} tensors differ)")
        model.load_state_dict(sd)
        return model


def load_model(directory: str | os.PathLike, map_location: str = "cpu") -> ModelMixin:
    """Load any vidiff model directory."""
    return ModelMixin.from_pretrained(directory, map_location)


def build_model(spec: dict) -> ModelMixin:
    """A model from a recipe mapping ``{"type": "UNet3D", **fields}`` (a :data:`MODELS` entry);
    an unknown type or field is a one-line :class:`~vidiff.registry.RegistryError`."""
    spec = dict(spec)
    return MODELS.get(spec.pop("type", None)).from_config(spec)
