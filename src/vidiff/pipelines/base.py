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
``model.safetensors``), ``["pipeline", folder]`` a nested pipeline, which shares this one's
components of the same name when its own folder lacks them (a key-frame model shares the
autoencoder). The denoiser sits at the top (``"."``), so a training checkpoint is a pipeline
folder too. Folders written before the manifest existed are read by inferring it from the
sub-folders present.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ..config import ExperimentConfig, from_dict, to_dict
from ..data.video_io import to_uint8
from ..models.modeling import load_model
from ..registry import PIPELINES
from ..version import __version__
from ..training.checkpoint import MODEL_INDEX, read_model_index, resolve_checkpoint

__all__ = ["DiffusionPipeline", "MODEL_INDEX", "read_model_index"]

class DiffusionPipeline:
    """Named components, the recipe, and what every pipeline does with them.

    Args:
        experiment: the recipe the components were trained with (schedule, prediction,
            sampling defaults); defaults to :class:`~vidiff.config.ExperimentConfig`.
        components: name -> model (a ``ModelMixin``), nested pipeline or ``None``.
    """

    #: the components a subclass knows by name (others may still be registered)
    component_names: ClassVar[tuple[str, ...]] = ("denoiser",)

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
        new._post_init()
        return new

    def _post_init(self) -> None:
        """Subclasses derive state from components here (called after loading, ``from_pipe``)."""

    # -- loading and saving -----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu",
                        shared: dict[str, Any] | None = None) -> "DiffusionPipeline":
        """Load a pipeline folder, a run's ``checkpoints`` folder, a run folder, or a shipped
        checkpoint's name. Called on :class:`DiffusionPipeline`, the manifest's ``_class_name``
        picks the class (a :data:`~vidiff.registry.PIPELINES` entry); on a subclass, that class.
        ``shared``: components a nested pipeline takes from its parent when it lacks them."""
        d = resolve_checkpoint(path)
        index = read_model_index(d)
        target = cls
        if cls is DiffusionPipeline:
            target = PIPELINES.get(index.get("_class_name", "VideoDiffusionPipeline"))
        exp = ExperimentConfig()
        if (d / "pipeline.json").is_file():
            exp = from_dict(ExperimentConfig, json.loads((d / "pipeline.json").read_text()),
                            "pipeline")
        comps: dict[str, Any] = {}
        for name, spec in index.items():
            if name.startswith("_"):
                continue
            kind, folder = spec
            if kind == "model":
                comps[name] = load_model(d / folder, map_location=device)
            elif kind == "pipeline":
                comps[name] = PIPELINES.get(read_model_index(d / folder).get(
                    "_class_name", target.__name__)).from_pretrained(
                    d / folder, device=device, shared={**(shared or {}), **comps})
            else:
                raise ValueError(f"{d / MODEL_INDEX}: component {name!r} has unknown kind "
                                 f"{kind!r} (model or pipeline)")
        for name, c in (shared or {}).items():
            if name in target.component_names and name not in comps:
                comps[name] = c
        pipe = target.__new__(target)
        DiffusionPipeline.__init__(pipe, exp, **comps)
        pipe._post_init()
        return pipe

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None,
                        exclude: tuple[str, ...] = ()) -> None:
        """Write every component (the denoiser at the top, the others in sub-folders),
        ``pipeline.json`` and ``model_index.json``; ``dtype`` (e.g. ``torch.float16``) stores the
        weights smaller (loading casts back); ``exclude``: components not written (a nested
        pipeline leaves out what it shares with its parent)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        index: dict[str, Any] = {"_class_name": type(self).__name__,
                                 "_vidiff_version": __version__}
        for name, c in self.components.items():
            folder = "." if name == "denoiser" else name
            if folder != "." and (d / folder).is_dir():  # a stale component of an earlier save
                shutil.rmtree(d / folder)
            if c is None or name in exclude:
                continue
            if isinstance(c, DiffusionPipeline):
                c.save_pretrained(d / folder, dtype=dtype,
                                  exclude=tuple(n for n in c.components if n in self.components
                                                and c.components[n] is self.components[n]))
                index[name] = ["pipeline", folder]
            else:
                c.save_pretrained(d / folder, dtype=dtype)
                index[name] = ["model", folder]
        (d / "pipeline.json").write_text(json.dumps(to_dict(self.experiment), indent=2))
        (d / MODEL_INDEX).write_text(json.dumps(index, indent=2))

    # -- device, dtype, progress ------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.components["denoiser"].parameters()).device

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
           ) -> "DiffusionPipeline":
        """Move every model component (nested pipelines too)."""
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
        return torch.cat(list(ae.decode_chunked(z / ae.scale_factor, chunk=chunk)), dim=2)

    def postprocess(self, x: Tensor, output_type: str = "np") -> Tensor | np.ndarray:
        """Model-space samples -> ``"latent"`` (unchanged), ``"pt"`` (pixels in ``[-1, 1]``,
        ``(N, C, F, H, W)``) or ``"np"`` (uint8 ``(N, F, H, W, 3)``).

        Raises:
            ValueError: another ``output_type``.
        """
        if output_type not in ("np", "pt", "latent"):
            raise ValueError("output_type must be 'np', 'pt' or 'latent'")
        if output_type == "latent":
            return x
        if self.components.get("autoencoder") is not None:
            x = self.decode_latents(x)
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
        return x if ae is None else ae.latents(x)

    @property
    def frames_per_step(self) -> int:
        """Pixel frames per model-space frame (the autoencoder's ``f_t``; 1 in pixel space)."""
        ae = self.components.get("autoencoder")
        return ae.factors[0] if ae is not None else 1

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(c).__name__}" for n, c in self.components.items()
                          if c is not None)
        return f"{type(self).__name__}({parts})"

