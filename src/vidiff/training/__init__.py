"""Training: the loop (trainer), distribution, checkpoints and the tasks it trains."""

from .checkpoint import latest_checkpoint, load_checkpoint, resolve_checkpoint, save_checkpoint
from .distributed import Distributed
from .tasks import AutoencoderTask, DiffusionTask, Task, build_task
from .trainer import EMA, Trainer, TrainResult, build_model

__all__ = ["latest_checkpoint", "load_checkpoint", "resolve_checkpoint", "save_checkpoint",
           "Distributed", "Task", "build_task", "DiffusionTask", "AutoencoderTask", "EMA",
           "Trainer", "TrainResult", "build_model"]
