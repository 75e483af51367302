"""Pipelines (:data:`~vidiff.registry.PIPELINES`): named components plus their diffusion
settings, called like diffusers. One per task, all on :class:`DiffusionPipeline`:

* :class:`VideoDiffusionPipeline` - unconditional / class / fps video, given frames;
* :class:`VideoExtensionPipeline` - continue a given clip window by window;
* :class:`LongVideoPipeline` - LVDM's autoregressive and hierarchical long videos, streamed;
* :class:`ImageToVideoPipeline` - LaMD's image(-and-text)-to-video through a motion latent;
* :class:`TrajectoryPipeline` - Tora's trajectory-controlled video (text, paths, a first frame).
"""

from .base import MODEL_INDEX, DiffusionPipeline, read_model_index
from .lamd import ImageToVideoPipeline
from .trajectory import TrajectoryPipeline, load_trajectories
from .long_video import LongVideoPipeline, VideoExtensionPipeline
from .video import VideoDiffusionPipeline

__all__ = ["DiffusionPipeline", "MODEL_INDEX", "read_model_index", "VideoDiffusionPipeline",
           "VideoExtensionPipeline", "LongVideoPipeline", "ImageToVideoPipeline", "TrajectoryPipeline",
           "load_trajectories"]
