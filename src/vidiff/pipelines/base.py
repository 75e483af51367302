"""The base of every pipeline: named components, loading and saving, device, progress and
post-processing.

A pipeline is a set of named components - ``denoiser``, ``autoencoder``, ``guide``, ``key`` and
whatever a later pipeline needs (a text encoder, a trajectory extractor, a cascade stage) - plus
the recipe it was trained with (``pipeline.json``). On disk each component is a folder, listed
in ``model_index.json``::

    {"_class_name": "VideoDiffusionPipeline", "_vidiff_version": "0.1.0",
     "denoiser": ["model", "."], "autoencoder": ["model", "autoencoder"],
     "guide": ["model", "guide"], "key": ["pipeline", "key"]}

``["model", folder]`` is any :data:`~vidiff.registry.MODELS` directory (``config.json`` +
``model.safetensors``), ``["pipeline", folder]`` a nested pipeline, and a nested pipeline's
``["shared", name]`` is its parent's component ``name`` (a key-frame model shares the
autoencoder). Kinds are :data:`~vidiff.registry.COMPONENT_KINDS` entries, so a component of
another kind (a text encoder in its own format) is one more entry. The denoiser sits at the
top (``"."``), so a training checkpoint is a pipeline folder too. Folders written before the
manifest existed are read by inferring it from the sub-folders present.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..devices import resolve_device
from ..files import read_json
from ..config import ExperimentConfig, from_dict, import_plugins, to_dict
from ..data.video_io import to_uint8
from ..models.autoencoder import Autoencoder
from ..models.modeling import ModelMixin, load_model
from ..registry import COMPONENT_KINDS, PIPELINES
from ..version import __version__
from .guards import NonFiniteError, nonfinite_weights
from ..training.checkpoint import MODEL_INDEX, read_model_index, resolve_checkpoint

__all__ = ["DiffusionPipeline", "ComponentKind", "MODEL_INDEX", "read_model_index"]

class DiffusionPipeline:
    """Named components, the recipe, and what every pipeline does with them.

    Args:
        experiment: the recipe the components were trained with (schedule, prediction,
            sampling defaults); defaults to :class:`~vidiff.config.ExperimentConfig`.
        components: name -> model (a ``ModelMixin``), nested pipeline or ``None``.
    """

    def __init__(self, experiment: ExperimentConfig | None = None, **components: Any):
        self.experiment = experiment or ExperimentConfig()
        self.components: dict[str, Any] = {}
        self.progress = True
        self.register_modules(**components)

    def register_modules(self, **components: Any) -> None:
        """Add or replace named components (models are put in eval mode)."""
        for name, c in components.items():
            if isinstance(c, torch.nn.Module):
                c.eval()
            self.components[name] = c

    @classmethod
    def from_pipe(cls, pipe: "DiffusionPipeline", **overrides: Any) -> "DiffusionPipeline":
        """This pipeline class over another pipeline's components (shared, not copied)."""
        new = cls.__new__(cls)
        DiffusionPipeline.__init__(new, pipe.experiment, **{**pipe.components, **overrides})
        new.progress = pipe.progress
        return new

    # -- loading and saving -----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu",
                        parent: dict[str, Any] | None = None) -> "DiffusionPipeline":
        """Load a pipeline folder, a run's ``checkpoints`` folder, a run folder, or a shipped
        checkpoint's name. Called on :class:`DiffusionPipeline`, the manifest's ``_class_name``
        picks the class (a :data:`~vidiff.registry.PIPELINES` entry); on a subclass, that class.
        The recipe's ``imports`` are imported first. ``parent``: the components of the pipeline
        a nested one belongs to (its ``["shared", name]`` entries come from there).

        Raises:
            FileNotFoundError: no checkpoint at ``path``.
            ValueError: a manifest naming an unknown class or kind, a shared component the
                parent lacks, or a folder holding an autoencoder rather than a pipeline.
        """
        d = resolve_checkpoint(path)
        index = read_model_index(d)
        if parent and not (d / MODEL_INDEX).is_file() and "autoencoder" not in index \
                and parent.get("autoencoder") is not None:
            index["autoencoder"] = ["shared", "autoencoder"]  # a key/ folder of old exports
        exp = ExperimentConfig()
        if (d / "pipeline.json").is_file():
            exp = from_dict(ExperimentConfig, read_json(d / "pipeline.json"),
                            str(d / "pipeline.json"))
        import_plugins(exp.imports)  # the modules that register its parts
        target = cls
        if cls is DiffusionPipeline:
            target = PIPELINES.get(index.get("_class_name", "VideoDiffusionPipeline"))
        comps: dict[str, Any] = {}
        entries = [(n, spec) for n, spec in index.items() if not n.startswith("_")]
        for name, (kind, folder) in sorted(entries, key=lambda e: e[1][0] == "pipeline"):
            if kind == "shared":
                if (parent or {}).get(folder) is None:
                    raise ValueError(f"{d}: component {name!r} is shared with the pipeline this "
                                     "folder belongs to; load that pipeline instead")
                comps[name] = parent[folder]
            else:  # models first, then nested pipelines (which may share them)
                comps[name] = COMPONENT_KINDS.get(kind).load(d / folder, device, comps)
        target.check_components(d, comps)
        pipe = target.__new__(target)
        DiffusionPipeline.__init__(pipe, exp, **comps)
        return pipe

    @classmethod
    def check_components(cls, d: Path, components: dict[str, Any]) -> None:
        """Refuse components of the wrong kind before the pipeline is built (one line naming
        the folder); the base refuses an autoencoder where the denoiser belongs."""
        if isinstance(components.get("denoiser"), Autoencoder):
            raise ValueError(f"{d} holds an autoencoder "
                             f"({type(components['denoiser']).__name__}), not a diffusion "
                             "pipeline: use it with `vidiff autoencode` or as a recipe's "
                             "`autoencoder:`")

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None,
                        parent: dict[str, Any] | None = None) -> None:
        """Write every component (the denoiser at the top, the others in sub-folders),
        ``pipeline.json`` and ``model_index.json``; ``dtype`` (e.g. ``torch.float16``) stores the
        weights smaller (loading casts back). ``parent``: the components of the pipeline this
        one is nested in; those it shares are recorded as ``["shared", name]``, not written."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        index: dict[str, Any] = {"_class_name": type(self).__name__,
                                 "_vidiff_version": __version__}
        for name, c in self.components.items():
            folder = "." if name == "denoiser" else name
            if folder != "." and (d / folder).is_dir():  # a stale component of an earlier save
                shutil.rmtree(d / folder)
            if c is None:
                continue
            if parent is not None and parent.get(name) is c:
                index[name] = ["shared", name]
                continue
            kind = next(k for k, handler in COMPONENT_KINDS.items() if handler.owns(c))
            COMPONENT_KINDS.get(kind).save(c, d / folder, dtype, self.components)
            index[name] = [kind, folder]
        (d / "pipeline.json").write_text(json.dumps(to_dict(self.experiment), indent=2))
        (d / MODEL_INDEX).write_text(json.dumps(index, indent=2))

    # -- device, dtype, progress ------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.components["denoiser"].parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The denoiser's weight dtype (sampling itself runs in float32 around it)."""
        return next(self.components["denoiser"].parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
           ) -> "DiffusionPipeline":
        """Move every model component (nested pipelines too); a device this torch cannot use is
        a one-line ``ValueError``."""
        device = resolve_device(device) if device is not None else None
        for c in self.components.values():
            if c is not None:
                c.to(device, dtype)
        return self

    def set_progress_bar_config(self, disable: bool = False) -> None:
        """Show (default) or hide the sampler's progress bar."""
        self.progress = not disable

    # -- post-processing --------------------------------------------------------------------
    @torch.no_grad()
    def decode_latents(self, z: Tensor, chunk: int = 4) -> Tensor:
        """Scaled latents ``(N, c, l, h, w)`` -> pixels ``(N, C, l * f_t, H, W)``, chunk by chunk."""
        ae = self.components["autoencoder"]
        z = (z / ae.scale_factor).to(next(ae.parameters()).dtype)
        return torch.cat(list(ae.decode_chunked(z, chunk=chunk)), dim=2).float()

    def postprocess(self, x: Tensor, output_type: str = "np") -> Tensor | np.ndarray:
        """Model-space samples -> ``"latent"`` (unchanged), ``"pt"`` (pixels in ``[-1, 1]``,
        ``(N, C, F, H, W)``) or ``"np"`` (uint8 ``(N, F, H, W, 3)``).

        Raises:
            ValueError: another ``output_type``.
            NonFiniteError: decoding produced NaN/inf (the samples given are finite).
        """
        if output_type not in ("np", "pt", "latent"):
            raise ValueError("output_type must be 'np', 'pt' or 'latent'")
        if output_type == "latent":
            return x
        ae = self.components.get("autoencoder")
        if ae is not None:
            x = self.decode_latents(x)
            if not bool(torch.isfinite(x).all()):
                raise NonFiniteError("decoding the latents produced NaN/inf: the autoencoder "
                                     f"holds {nonfinite_weights(ae) or 'finite weights'}")
        x = x.clamp(-1, 1)
        return x if output_type == "pt" else to_uint8(x)

    def to_uint8(self, x: Tensor) -> np.ndarray:
        """Model-space frames -> uint8 ``(N, F, H, W, 3)`` (decoding latents chunk by chunk)."""
        return self.postprocess(x, "np")

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """Pixels ``(N, C, F, H, W)`` in ``[-1, 1]`` -> the denoiser's space (scaled latents for a
        latent pipeline, unchanged otherwise)."""
        ae = self.components.get("autoencoder")
        x = video.to(self.device).float()
        return x if ae is None else ae.latents(x.to(next(ae.parameters()).dtype)).float()

    @property
    def frames_per_step(self) -> int:
        """Pixel frames per model-space frame (the autoencoder's ``f_t``; 1 in pixel space)."""
        ae = self.components.get("autoencoder")
        return ae.factors[0] if ae is not None else 1

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(c).__name__}" for n, c in self.components.items()
                          if c is not None)
        return f"{type(self).__name__}({parts})"


# -- component kinds: how each kind of component is saved and loaded -------------------------------
@dataclass(frozen=True)
class ComponentKind:
    """A :data:`~vidiff.registry.COMPONENT_KINDS` entry: components that are instances of
    ``cls`` save themselves with ``save_pretrained(folder, dtype=...)`` (a ``nested`` pipeline
    also gets its parent's components, to record what it shares); ``load(folder, device,
    parent)`` reads one back."""

    cls: type
    load: Callable[[Path, str, dict], Any]
    nested: bool = False

    def owns(self, c: Any) -> bool:
        return isinstance(c, self.cls)

    def save(self, c: Any, folder: Path, dtype: torch.dtype | None, parent: dict) -> None:
        c.save_pretrained(folder, dtype=dtype, **({"parent": parent} if self.nested else {}))


def _load_nested(folder: Path, device: str, parent: dict) -> DiffusionPipeline:
    name = read_model_index(folder).get("_class_name", "VideoDiffusionPipeline")
    return PIPELINES.get(name).from_pretrained(folder, device=device, parent=parent)


COMPONENT_KINDS.register("model")(ComponentKind(
    ModelMixin, lambda folder, device, parent: load_model(folder, map_location=device)))
COMPONENT_KINDS.register("pipeline")(ComponentKind(DiffusionPipeline, _load_nested, nested=True))
