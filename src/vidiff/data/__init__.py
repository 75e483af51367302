"""Data: Moving Shapes, video/image datasets, video I/O."""

from .images import ImageFolderDataset
from .datasets import (MovingShapesDataset, VideoFolderDataset, collate,
                       frames_to_tensor, resize_crop)
from .flow_images import FlowImageDataset
from .joint import JointImages
from .latents import LatentDataset, encode_to_cache
from .moving_shapes import PALETTE, SHAPES, MovingShapesConfig, ShapeClip, generate_clip
from .sample_outputs import contact_sheet, write_sample_outputs
from .video_io import (VideoReadError, VideoWriter, export_to_gif, export_to_video, read_video,
                       write_video)

__all__ = ["FlowImageDataset", "JointImages", "LatentDataset", "encode_to_cache", "ImageFolderDataset", "MovingShapesDataset", "VideoFolderDataset", "collate",
           "frames_to_tensor", "resize_crop", "PALETTE", "SHAPES", "MovingShapesConfig",
           "ShapeClip", "generate_clip", "VideoReadError", "VideoWriter", "contact_sheet", "write_sample_outputs",
           "export_to_gif", "export_to_video", "read_video", "write_video"]
