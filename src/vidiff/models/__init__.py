"""Denoisers and autoencoders."""

from .modeling import MODEL_REGISTRY, ModelMixin, load_model
from .unet3d import UNet3D, UNet3DConfig
from .video_ae import DiagonalGaussian, VideoAutoencoder, VideoAutoencoderConfig

__all__ = ["MODEL_REGISTRY", "ModelMixin", "load_model", "UNet3D", "UNet3DConfig",
           "DiagonalGaussian", "VideoAutoencoder", "VideoAutoencoderConfig"]
