"""Checkpoints: safetensors for tensors, JSON for the rest, written atomically.

A checkpoint is a directory ``step_000123/`` holding

* ``config.json`` + ``model.safetensors``: the EMA weights as a loadable model
  (``ModelMixin.from_pretrained``), so a checkpoint samples directly;
* ``pipeline.json``: the experiment config (schedule, prediction, data, sampling defaults);
* ``raw.safetensors``: the trained (non-EMA) weights;
* ``optimizer.safetensors`` + ``trainer_state.json``: optimizer moments, step, scheduler, RNG.

It is written as ``.step_000123.tmp`` and renamed when complete, and ``latest`` (a text file
naming the newest complete checkpoint) is replaced atomically after that, so a kill at any
moment leaves the previous checkpoint intact and ``latest`` pointing at a whole one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..files import read_json, read_tensors
from ..models.modeling import atomic_write
from ..version import __version__

MODEL_INDEX = "model_index.json"
#: the sub-folders a pipeline folder written without a manifest may have, and what they hold
_LEGACY_COMPONENTS = {"autoencoder": "model", "guide": "model", "key": "pipeline"}

__all__ = ["MODEL_INDEX", "read_model_index", "model_index", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "optimizer_to_tensors",
           "optimizer_from_tensors", "optimizer_state_from_tensors", "resolve_checkpoint", "shipped_checkpoints",
           "load_autoencoder"]


def read_model_index(d: Path) -> dict[str, Any]:
    """The component manifest of pipeline folder ``d`` (see :mod:`vidiff.pipelines.base`),
    inferred from the sub-folders present for a folder written without one."""
    d = Path(d)
    if (d / MODEL_INDEX).is_file():
        index = read_json(d / MODEL_INDEX)
        for name, spec in index.items():
            if not name.startswith("_") and not (isinstance(spec, list) and len(spec) == 2
                                                 and all(isinstance(x, str) for x in spec)):
                raise ValueError(f"{d / MODEL_INDEX}: component {name!r} must be [kind, folder], "
                                 f"got {spec!r}")
        return index
    index: dict[str, Any] = {"denoiser": ["model", "."]}
    index.update({n: [kind, n] for n, kind in _LEGACY_COMPONENTS.items() if (d / n).is_dir()})
    return index


def model_index(pipeline_class: str, submodels: dict | None = None) -> dict[str, Any]:
    """The manifest of a training checkpoint: the trained model as ``denoiser`` at the top,
    each sub-model in its folder."""
    return {"_class_name": pipeline_class, "_vidiff_version": __version__,
            "denoiser": ["model", "."],
            **{name: ["model", name] for name in (submodels or {})}}


def optimizer_to_tensors(opt: torch.optim.Optimizer | dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer (or its state dict) into flat tensors and JSON-able metadata."""
    sd = opt.state_dict() if isinstance(opt, torch.optim.Optimizer) else opt
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           meta: dict) -> None:
    """Load what :func:`optimizer_to_tensors` wrote into ``opt``."""
    opt.load_state_dict(optimizer_state_from_tensors(tensors, meta))


def optimizer_state_from_tensors(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """The optimizer state dict :func:`optimizer_to_tensors` split."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    for pid, st in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(root: str | Path, step: int, *, model, ema_state: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer | dict, trainer_state: dict, pipeline: dict,
                    weights: dict[str, torch.Tensor] | None = None,
                    keep: int = 2, submodels: dict | None = None,
                    task_tensors: dict[str, torch.Tensor] | None = None,
                    pipeline_class: str | None = None) -> Path:
    """Write checkpoint ``root/step_{step:06d}`` atomically and point ``root/latest`` at it.

    ``model`` writes the EMA weights ``ema_state`` as the loadable model; ``weights`` are the
    raw trained weights (default ``model.state_dict()``); ``optimizer`` an optimizer or its
    (full) state dict; ``submodels`` components saved as sub-folders (e.g. ``autoencoder``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    tmp = root / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save_pretrained(tmp, state_dict=ema_state)
    raw = weights if weights is not None else model.state_dict()
    save_file({k: v.detach().contiguous().cpu() for k, v in raw.items()},
              str(tmp / "raw.safetensors"))
    opt_t, opt_meta = optimizer_to_tensors(optimizer)
    save_file(opt_t, str(tmp / "optimizer.safetensors"))
    (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "optimizer": opt_meta}))
    (tmp / "pipeline.json").write_text(json.dumps(pipeline, indent=2))
    if task_tensors:  # e.g. an autoencoder's discriminator and its optimizer
        save_file({k: v.detach().contiguous().cpu() for k, v in task_tensors.items()},
                  str(tmp / "task.safetensors"))
    for sub_name, sub in (submodels or {}).items():  # e.g. a latent model's frozen autoencoder
        sub.save_pretrained(tmp / sub_name)
    if pipeline_class:
        (tmp / MODEL_INDEX).write_text(json.dumps(model_index(pipeline_class, submodels),
                                                  indent=2))
    for f in tmp.rglob("*"):
        if f.is_dir():
            continue
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write(root / "latest", lambda p: Path(p).write_text(name + "\n"))
    # prune old ones
    done = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("step_"))
    for d in done[:-keep] if keep > 0 else []:
        shutil.rmtree(d, ignore_errors=True)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    """The checkpoint ``root/latest`` names, or None."""
    root = Path(root)
    f = root / "latest"
    if not f.is_file():
        return None
    d = root / f.read_text().strip()
    return d if (d / "trainer_state.json").is_file() else None


def shipped_checkpoints() -> dict[str, Path]:
    """The checkpoints in the package (``vidiff/assets``), by name."""
    from importlib import resources
    root = Path(str(resources.files("vidiff") / "assets"))
    return {d.name: d for d in sorted(root.iterdir()) if (d / "config.json").is_file()} \
        if root.is_dir() else {}


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint directory, a run's ``checkpoints`` folder, a run folder, or the name
    of a checkpoint shipped in the package (``vdm_tiny``, ``lvdm_tiny``) when no such path
    exists."""
    p = Path(path)
    for cand in (p, p / "checkpoints"):
        if (cand / "config.json").is_file() and (cand / "model.safetensors").is_file():
            return cand
        if (lat := latest_checkpoint(cand)) is not None:
            return lat
    shipped = shipped_checkpoints()
    if not p.exists() and str(path) in shipped:
        return shipped[str(path)]
    raise FileNotFoundError(f"{p}: no vidiff checkpoint here (expected config.json + "
                            "model.safetensors, or a 'latest' file; shipped checkpoints: "
                            f"{', '.join(shipped) or 'none'})")


def load_checkpoint(path: str | Path) -> dict:
    """Tensors and metadata of a checkpoint directory (no unpickling)."""
    p = Path(path)
    task = p / "task.safetensors"
    return {"raw": read_tensors(p / "raw.safetensors"),
            "ema": read_tensors(p / "model.safetensors"),
            "optimizer": read_tensors(p / "optimizer.safetensors"),
            "state": read_json(p / "trainer_state.json"),
            "task": read_tensors(task) if task.is_file() else {}}


def load_autoencoder(path: str | Path, map_location: str = "cpu"):
    """The :class:`~vidiff.models.Autoencoder` at ``path`` (as :func:`resolve_checkpoint` finds
    it): an autoencoder folder or run, or a latent pipeline (a shipped name too) whose
    ``autoencoder`` component it is.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: a checkpoint holding no autoencoder (one line naming what it holds).
    """
    from ..models.autoencoder import Autoencoder
    from ..models.modeling import load_model

    d = resolve_checkpoint(path)
    ae = load_model(d, map_location=map_location)
    spec = read_model_index(d).get("autoencoder")
    if not isinstance(ae, Autoencoder) and spec is not None:
        ae = load_model(d / spec[1], map_location=map_location)  # a latent pipeline's
    if not isinstance(ae, Autoencoder):
        raise ValueError(f"{path} holds a {type(ae).__name__}, not an autoencoder (train one "
                         "with `task: autoencoder`)")
    return ae
