"""LaMD's image-to-video and text-image-to-video (Hu, Chen & Luo 2023): diffuse only the motion
latent ``z_m`` (no time axis) with a 2D U-Net conditioned on the first frame's content, then
decode it with that frame through the MCD-VAE.

``pipe = ImageToVideoPipeline.from_pretrained("lamd_tiny")``;
``frames = pipe(image=img, num_inference_steps=50, num_videos=4, generator=g)`` returns uint8
``(N, L, H, W, 3)``; ``pipe(image=img, prompt="a red circle moving up-left")`` for a text model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.video_io import to_uint8
from ..registry import PIPELINES
from .video import VideoDiffusionPipeline

__all__ = ["ImageToVideoPipeline", "image_tensor"]


def image_tensor(image: Any) -> Tensor:
    """A first frame as float ``(B, 3, H, W)`` in ``[-1, 1]``, from a PIL image, a uint8
    ``(H, W, 3)`` / ``(B, H, W, 3)`` array, or a float tensor ``(3, H, W)`` / ``(B, 3, H, W)``
    in ``[-1, 1]``.

    Raises:
        ValueError: another type or shape, or non-finite values.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise ValueError(f"an image array must be uint8 (H, W, 3) or (B, H, W, 3), got "
                             f"{image.dtype} {image.shape}")
        a = image[None] if image.ndim == 3 else image
        return torch.from_numpy(a.copy()).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if isinstance(image, Tensor):
        x = image[None] if image.ndim == 3 else image
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"an image tensor must be (3, H, W) or (B, 3, H, W) in [-1, 1], "
                             f"got {tuple(image.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("the image holds NaN/inf")
        return x.float()
    raise ValueError(f"image must be a PIL image, a uint8 array or a tensor, got "
                     f"{type(image).__name__}")


@PIPELINES.register()
class ImageToVideoPipeline(VideoDiffusionPipeline):
    """The motion generator (``denoiser``: a 2D :class:`~vidiff.models.UNet3D` with
    ``content_channels``, optionally ``context_dim`` for text) and the MCD-VAE
    (``autoencoder``: :class:`~vidiff.models.lamd.MCDVAE`). Sampling uses any sampler over a
    ``K``-step sub-sequence of the schedule's training steps (``num_inference_steps = K``;
    ``K = 1000`` with ``sampler="ancestral"`` is DDPM itself)."""

    @classmethod
    def check_components(cls, d: Path, components: dict[str, Any]) -> None:
        super().check_components(d, components)
        if not hasattr(components.get("autoencoder"), "clip_conditions"):
            raise ValueError(f"{d}: image-to-video needs an MCD-VAE as its autoencoder")

    def sample_shape(self, num_videos: int, num_frames: int | None) -> tuple[int, ...]:
        """``(N, d, 1, h, w)``: one motion latent a video (it has no time axis).

        Raises:
            ValueError: ``num_frames`` other than the MCD-VAE's clip length.
        """
        L = self.autoencoder.factors[0]
        if num_frames not in (None, L):
            raise ValueError(f"this MCD-VAE generates clips of exactly {L} frames "
                             f"(num_frames={num_frames})")
        return super().sample_shape(num_videos, L)

    @property
    def image_size(self) -> int:
        """The first frame's side in pixels (the motion latent's size times ``f_s``)."""
        return self.trained_shape()[1] * self.autoencoder.factors[1]

    @torch.no_grad()
    def __call__(self, image: Any = None, num_videos: int = 1, num_frames: int | None = None,
                 output_type: str = "np", **kwargs: Any):
        """Generate ``num_videos`` clips starting at ``image`` (see :func:`image_tensor`; one
        image for all videos, or one per video), ``image_size`` square. Other arguments are
        :meth:`VideoDiffusionPipeline.__call__`'s (``prompt``, ``negative_prompt``,
        ``guidance_scale`` for a text model; ``num_inference_steps``, ``sampler``,
        ``generator``, ``callback``, ...). Returns uint8 ``(N, L, H, W, 3)`` (``"np"``), float
        ``(N, 3, L, H, W)`` in ``[-1, 1]`` (``"pt"``) or the scaled motion latents
        ``(N, d, 1, h, w)`` (``"latent"``).

        Raises:
            ValueError: no image, an image of another size, a bad output type, or what the
                base pipeline refuses.
        """
        if image is None:
            raise ValueError("image-to-video needs image= (the first frame)")
        if output_type not in ("np", "pt", "latent"):
            raise ValueError("output_type must be 'np', 'pt' or 'latent'")
        ae = self.autoencoder
        img = image_tensor(image).to(self.device)
        S = self.image_size
        if img.shape[2:] != (S, S):
            raise ValueError(f"the image is {img.shape[3]}x{img.shape[2]}; this model starts "
                             f"from {S}x{S} frames (resize and centre-crop it, as `vidiff i2v` "
                             "does)")
        content = ae.content(img.to(next(ae.parameters()).dtype)).float()
        if kwargs.get("prompt") is None and "context" in self.model.accepted_conditions:
            kwargs["guidance_scale"] = 0.0  # both branches would see the empty prompt: one pass
        z = super().__call__(num_videos=num_videos, num_frames=num_frames, content=content,
                             output_type="latent", **kwargs)
        if output_type == "latent":
            return z
        imgs = img.expand(z.shape[0], -1, -1, -1) if img.shape[0] == 1 else img
        x = ae.decode((z[:, :, 0] / ae.scale_factor).to(next(ae.parameters()).dtype), imgs)
        x = x.float().clamp(-1, 1)
        return x if output_type == "pt" else to_uint8(x)
