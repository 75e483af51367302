"""LaMD (Hu, Chen & Luo 2023): the motion-content decomposed VAE; the motion generator is a
2D :class:`~vidiff.models.UNet3D` with ``content_channels``."""

from .mcd_vae import MCDVAE, MCDVAEConfig

__all__ = ["MCDVAE", "MCDVAEConfig"]
