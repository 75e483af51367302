"""The content condition of LaMD's motion generator: the first frame's features from the
MCD-VAE's image encoder (:meth:`~vidiff.models.lamd.MCDVAE.content`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..registry import ENCODERS
from .base import ConditionEncoder

__all__ = ["ContentEncoder"]


@ENCODERS.register("content")
class ContentEncoder(ConditionEncoder):
    """``content`` ``(B, C_c, h, w)``: in training, what the autoencoder derived from each clip
    (``Autoencoder.clip_conditions``, put in the batch by the diffusion task); when sampling, the
    features of the given image (:class:`~vidiff.pipelines.ImageToVideoPipeline` computes them),
    one for all videos or one per video. It is never dropped: guidance (text) steers both
    branches from the same first frame (LaMD, Sec. 3.2)."""

    @classmethod
    def videos_given(cls, value: Any) -> int | None:
        """One video per first frame when several are given."""
        n = value.shape[0] if isinstance(value, Tensor) and value.ndim == 4 else 1
        return n if n > 1 else None

    def for_sampling(self, model: nn.Module, value: Any, num_videos: int, *,
                     device: torch.device, generator: torch.Generator | None,
                     guidance_scale: float, defaults: Any) -> tuple[Tensor, Tensor] | None:
        if value is None:
            raise ValueError("this motion generator needs a first frame: use "
                             "ImageToVideoPipeline(image=...) or `vidiff i2v IMAGE`")
        c = torch.as_tensor(value).to(device=device, dtype=torch.float32)
        if c.ndim != 4:
            raise ValueError(f"content must be (B, C, h, w), got {tuple(c.shape)}")
        if c.shape[0] == 1:
            c = c.expand(num_videos, -1, -1, -1)
        elif c.shape[0] != num_videos:
            raise ValueError(f"{c.shape[0]} first frames (images) for {num_videos} videos "
                             "(give one, or one per video)")
        return c, c

    def for_training(self, model: nn.Module, batch: dict, *, device: torch.device,
                     generator: torch.Generator, drop_prob: float) -> Tensor | None:
        if "content" not in batch:
            raise ValueError("this motion generator is conditioned on content: train it on an "
                             "MCD-VAE's latents (`autoencoder:` naming an MCDVAE run)")
        return batch["content"].to(device)
