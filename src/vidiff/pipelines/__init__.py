"""Pipelines: a network plus its diffusion settings, called like diffusers."""

from .video import VideoDiffusionPipeline

__all__ = ["VideoDiffusionPipeline"]
