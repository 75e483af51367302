"""Inflation: a text-to-image U-Net becomes a video U-Net that starts as the image model.

Make-A-Video (Singer et al. 2022, section 3.2) extends a trained text-to-image model with
temporal layers - a 1D convolution after every 2D convolution (pseudo-3D convolution,
initialised to the identity) and a temporal attention after every spatial attention (its output
projection zero) - plus fps conditioning. Every weight of the image model is kept, and every new
layer starts as the identity, so on any video the inflated model's output equals the image
model's output frame by frame until the temporal layers train.

A recipe does the same with ``train.init_from`` (the image checkpoint) and the inflated model
config; :func:`inflate` does it in Python.
"""

from __future__ import annotations

import dataclasses

from .unet3d import UNet3D

__all__ = ["inflate", "TEMPORAL_LAYERS"]

#: what a Make-A-Video second stage trains (``train.trainable``): the temporal layers by their
#: class names, and the fps embedding
TEMPORAL_LAYERS = ("TemporalConv", "TemporalAttention", "fps_embed.*")


def inflate(image_model: UNet3D, *, temporal_conv: bool = True, temporal_attention: bool = True,
            temporal_attention_levels: tuple[int, ...] | None = None,
            fps_conditioning: bool = False, num_frames: int | None = None) -> UNet3D:
    """A video :class:`~vidiff.models.UNet3D` holding ``image_model``'s weights, with new
    temporal layers that start as the identity.

    Args:
        image_model: a U-Net (typically trained on images, without temporal layers).
        temporal_conv: add pseudo-3D convolutions (a Dirac-initialised 1D conv over frames
            after every 3x3 conv of the residual blocks).
        temporal_attention: add temporal attention (zero output projection) at
            ``temporal_attention_levels`` (default: the spatial attention levels).
        fps_conditioning: add the fps embedding (zero output layer).
        num_frames: the clip length the video model generates (its ``sample_shape``).
    Returns:
        the inflated model, in train mode, on ``image_model``'s device.
    Raises:
        ValueError: the image model has weights the video model cannot hold (never for a
            :class:`UNet3D` whose options are only extended).
    """
    c = image_model.config
    levels = c.temporal_attention_levels if temporal_attention_levels is None \
        else tuple(temporal_attention_levels)
    cfg = dataclasses.replace(
        c, temporal_conv=c.temporal_conv or temporal_conv,
        temporal_attention=c.temporal_attention or temporal_attention,
        temporal_attention_levels=levels,
        fps_conditioning=c.fps_conditioning or fps_conditioning,
        num_frames=num_frames or c.num_frames)
    param = next(image_model.parameters())
    video = UNet3D(cfg).to(device=param.device, dtype=param.dtype)
    result = video.load_state_dict(image_model.state_dict(), strict=False)
    if result.unexpected_keys:
        raise ValueError(f"inflate: the video model has no place for "
                         f"{result.unexpected_keys[:3]} of the image model")
    return video
