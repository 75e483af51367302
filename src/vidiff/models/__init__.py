"""Denoisers and autoencoders; every ``ModelMixin`` subclass is a ``MODELS`` registry entry."""

from .autoencoder import Autoencoder, Posterior, posterior_mode
from .diffusers_inflated import InflatedUNet2DCondition, InflatedUNet2DConditionConfig
from .lamd import MCDVAE, MCDVAEConfig
from .tora import STDiT, STDiTConfig
from .modeling import MODELS, ModelMixin, build_model, load_model
from .unet3d import UNet3D, UNet3DConfig
from .video_ae import DiagonalGaussian, VideoAutoencoder, VideoAutoencoderConfig

__all__ = ["Autoencoder", "Posterior", "posterior_mode", "MODELS", "ModelMixin", "build_model",
           "load_model", "UNet3D", "UNet3DConfig", "DiagonalGaussian", "VideoAutoencoder",
           "VideoAutoencoderConfig", "MCDVAE", "MCDVAEConfig", "STDiT", "STDiTConfig", "InflatedUNet2DCondition", "InflatedUNet2DConditionConfig"]
