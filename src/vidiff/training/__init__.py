"""Training: the trainer, EMA, checkpoints."""

from .checkpoint import latest_checkpoint, load_checkpoint, resolve_checkpoint, save_checkpoint
from .trainer import EMA, Trainer, TrainResult, build_dataset, build_model

__all__ = ["latest_checkpoint", "load_checkpoint", "resolve_checkpoint", "save_checkpoint", "EMA",
           "Trainer", "TrainResult", "build_dataset", "build_model"]
