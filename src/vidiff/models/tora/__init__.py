"""Tora (Zhang et al. 2024): the spatial-temporal DiT it is built on, its trajectory extractor
and motion-guidance fuser."""

from .dit import STDiT, STDiTConfig
from .motion import FUSERS, MotionFuser, TrajectoryExtractor

__all__ = ["STDiT", "STDiTConfig", "FUSERS", "MotionFuser", "TrajectoryExtractor"]
