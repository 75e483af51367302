"""The ``Task`` interface: what a run trains, and everything that is particular to it.

A task builds its own parts from the recipe (the trained model, frozen sub-models such as a
latent model's autoencoder, auxiliary networks such as a discriminator, the dataset), turns a
batch into a loss, keeps any extra state for exact resume, and measures what it needs at a
checkpoint. The :class:`~vidiff.training.Trainer` is only the loop around it (data order,
optimiser, EMA, precision, distribution, logging, checkpoints) and never looks inside.

A new kind of training is a subclass registered in :data:`~vidiff.registry.TASKS` and named by
the recipe's ``task:``; its own settings live in a config dataclass next to it
(:attr:`Task.config_class`), read from the recipe section :attr:`Task.config_key`.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ...config import from_dict
from ...models.modeling import ModelMixin, build_model
from ...registry import TASKS

__all__ = ["Task", "build_task"]


class Task:
    """Base class of training tasks (defaults: no extra state, nothing to measure).

    Args:
        cfg: the :class:`~vidiff.config.ExperimentConfig`.
        device: where the parts live.
        model: the model to train; built from ``cfg.model`` when ``None``.
    """

    #: the recipe section holding this task's settings (``None``: no settings of its own)
    config_key: ClassVar[str | None] = None
    #: the dataclass of that section
    config_class: ClassVar[type | None] = None
    #: the :data:`~vidiff.registry.PIPELINES` entry a checkpoint of this task loads as
    #: (``None``: the checkpoint is a plain model folder, e.g. an autoencoder)
    pipeline_class: ClassVar[str | None] = None

    def __init__(self, cfg, device: torch.device, model: ModelMixin | None = None):
        self.cfg, self.device = cfg, device
        self.model = (model if model is not None else build_model(cfg.model)).to(device)

    @classmethod
    def settings(cls, cfg) -> Any:
        """This task's settings section of ``cfg`` as its :attr:`config_class` (checked)."""
        if cls.config_key is None:
            return None
        section = getattr(cfg, cls.config_key)
        return section if not isinstance(section, dict) else from_dict(
            cls.config_class, section, f"config.{cls.config_key}")

    # -- data -------------------------------------------------------------------------------
    def build_dataset(self, seed: int) -> Dataset:
        """The training set (items are pure functions of ``(index, seed)``)."""
        raise NotImplementedError

    def prepare_batch(self, batch: dict, n0: int) -> dict:
        """Post-process a collated batch whose first item has global index ``n0``."""
        return batch

    # -- optimisation -----------------------------------------------------------------------
    def loss(self, net: nn.Module, batch: dict, g: torch.Generator, step: int) -> Tensor:
        """The scalar loss of ``net`` (the model, possibly wrapped by DDP/FSDP) on ``batch``;
        every random draw comes from ``g``."""
        raise NotImplementedError

    def after_step(self, step: int) -> dict[str, float]:
        """Called after each optimiser step (e.g. a discriminator update); returns log values."""
        return {}

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, Tensor]:
        """Extra state for exact resume (an auxiliary network and its optimiser)."""
        return {}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        pass

    def submodels(self) -> dict[str, ModelMixin]:
        """Frozen companions a checkpoint carries as components (e.g. ``autoencoder``)."""
        return {}

    def on_checkpoint(self, ema_state: dict[str, Tensor], batch: Callable[[int], dict]) -> None:
        """Measure what the checkpoint records, given the EMA weights and the data
        (``batch(i)`` is a fixed batch), e.g. an autoencoder's latent scale factor."""


def build_task(cfg, device: torch.device, model: ModelMixin | None = None) -> Task:
    """The :data:`~vidiff.registry.TASKS` entry ``cfg.task``, built."""
    return TASKS.get(cfg.task)(cfg, device, model)
