"""Tora (Zhang et al. 2024): the spatial-temporal DiT it is built on."""

from .dit import STDiT, STDiTConfig

__all__ = ["STDiT", "STDiTConfig"]
