"""Tora's trajectory-controlled generation (Zhang et al. 2024): text and point paths (and
optionally a first frame) to video, with a trajectory-controlled denoiser (the ST-DiT with its
trajectory extractor and motion-guidance fuser).

``pipe = TrajectoryPipeline.from_pretrained("tora_tiny")``;
``frames = pipe(prompt="a red circle", trajectories=paths, image=first)`` where ``paths`` is
``(K, F, 2)`` pixel ``(x, y)`` positions on the output frames (one set for all videos, or a list
of one set a video; :func:`load_trajectories` reads files and fits them to the clip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..conditioning.trajectory import read_trajectories, resample_trajectory, scale_trajectory
from ..diffusion.masks import frame_mask
from ..registry import PIPELINES
from .lamd import image_tensor
from .video import VideoDiffusionPipeline

__all__ = ["TrajectoryPipeline", "load_trajectories"]


def load_trajectories(paths: list[str | Path], num_frames: int, size: tuple[int, int]
                      ) -> np.ndarray:
    """The trajectories of one or more files (Tora's text format, JSON; several at once),
    each resampled to ``num_frames`` and scaled from its canvas to ``size`` ``(W, H)``:
    ``(K, num_frames, 2)``.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_trajectories` (a point outside the canvas
            names the trajectory and the point).
    """
    out = []
    for p in paths:
        trajs, canvas = read_trajectories(p)
        out += [scale_trajectory(resample_trajectory(t, num_frames), canvas, size)
                for t in trajs]
    return np.stack(out)


@PIPELINES.register()
class TrajectoryPipeline(VideoDiffusionPipeline):
    """A trajectory-controlled denoiser (``motion`` condition), its latent ``autoencoder``, and the
    ``trajectory_autoencoder`` the motion condition compresses flow images with."""

    @torch.no_grad()
    def __call__(self, trajectories: Any = None, image: Any = None, num_videos: int = 1,
                 **kwargs: Any):
        """Generate clips whose objects follow ``trajectories`` (see the module docstring);
        ``image`` (a PIL image, a uint8 ``(H, W, 3)`` array or a ``(3, H, W)`` tensor in
        ``[-1, 1]``, of the clip's size) is kept as the first frame: it is encoded as the first
        latent frame and given clean (``t = 0``), the others generated. Other arguments are
        :meth:`VideoDiffusionPipeline.__call__`'s (``prompt``, ``num_inference_steps``, ...).

        Raises:
            ValueError: an image of another size, or what the base pipeline refuses.
        """
        if image is not None:
            n = self.videos_for(num_videos, {**kwargs, "trajectories": trajectories})
            kwargs.update(self._first_frame(image, n, kwargs.get("num_frames")))
            num_videos = n
        return super().__call__(num_videos=num_videos, trajectories=trajectories, **kwargs)

    def _first_frame(self, image: Any, num_videos: int, num_frames: int | None) -> dict:
        """``given_frames`` / ``given_mask`` / ``cond_t`` keeping ``image`` as frame 0.

        For a latent model the image is encoded as ``f_t`` copies of itself, one latent frame:
        the first ``f_t`` frames come out nearly still (in training the first latent frame
        covers ``f_t`` moving frames), so a trajectory takes effect from frame ``f_t`` on."""
        img = image_tensor(image).to(self.device)
        _, S = self.clip_size
        if img.shape[2:] != (S, S):
            raise ValueError(f"the image is {img.shape[3]}x{img.shape[2]}; this model makes "
                             f"{S}x{S} frames")
        if img.shape[0] not in (1, num_videos):
            raise ValueError(f"{img.shape[0]} first frames for {num_videos} videos (give one, "
                             "or one per video)")
        ft = self.frames_per_step
        z0 = self.encode(img[:, :, None].expand(-1, -1, ft, -1, -1))  # one latent frame
        shape = self.sample_shape(num_videos, num_frames)
        given = torch.zeros(shape, device=self.device)
        given[:, :, :1] = z0.expand(num_videos, -1, -1, -1, -1) if z0.shape[0] == 1 else z0
        return {"given_frames": given, "given_mask": frame_mask(shape[2], [0], num_videos),
                "cond_t": 0.0, "conditioning_method": "replacement"}
