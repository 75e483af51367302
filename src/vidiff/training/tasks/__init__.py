"""Training tasks (:data:`~vidiff.registry.TASKS`): ``diffusion`` and ``autoencoder``."""

from .autoencoder import AutoencoderLossConfig, AutoencoderTask, hinge_d_loss
from .base import Task, build_task
from .diffusion import DiffusionTask

__all__ = ["Task", "build_task", "DiffusionTask", "AutoencoderTask", "AutoencoderLossConfig",
           "hinge_d_loss"]
