"""Tora's motion condition: trajectories (or a clip's dense flow) -> flow images
(:mod:`vidiff.conditioning.trajectory`) -> motion latents on the denoiser's latent grid, which
the ST-DiT's trajectory extractor and fuser take as ``motion``.

The flow images are compressed to the grid by the trajectory autoencoder (Tora: a 3D VAE on
flow images, reconstruction loss only; here a :class:`~vidiff.models.VideoAutoencoder` trained
with ``data.kind: trajectory_flow``), or, for the paper's ablation, by average pooling or by
sampling frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ranges import build_checked, ranged
from ..registry import ENCODERS
from .base import ConditionEncoder
from .trajectory import (dense_displacement_maps, flow_to_rgb, sample_tracks,
                         trajectory_flow_images)

__all__ = ["TrajectoryConfig", "MotionEncoder", "COMPRESSIONS", "trajectory_config"]

COMPRESSIONS = ("vae", "avg_pool", "sample")


@dataclass
class TrajectoryConfig:
    """A recipe's ``trajectory:`` section."""

    #: the trajectory autoencoder run (``compression: vae``): a VideoAutoencoder trained with
    #: ``data.kind: trajectory_flow``; checkpoints carry it as ``trajectory_autoencoder``
    autoencoder: str | None = None
    #: how flow images reach the latent grid: "vae", "avg_pool" or "sample" (frames)
    compression: str = "vae"
    #: the grid's factors for avg_pool / sample (the video autoencoder's f_t, f_s)
    temporal_factor: int = ranged(4, ">= 1")
    spatial_factor: int = ranged(4, ">= 1")
    #: training condition: "dense" (the clip's ground-truth flow, Tora's stage 1) or "sparse"
    #: (1..max_points tracks from a grid, drawn by flow magnitude: stage 2)
    mode: str = "sparse"
    max_points: int = ranged(3, ">= 1")
    grid_stride: int = ranged(4, ">= 1")
    #: Gaussian spreading of sparse tracks (pixels) and the flow colour scale (pixels a frame)
    sigma: float = ranged(2.0, "> 0")
    max_flow: float = ranged(4.0, "> 0")


def trajectory_config(experiment: Any) -> TrajectoryConfig:
    """A recipe's ``trajectory:`` section, checked (defaults when it has none)."""
    return build_checked(TrajectoryConfig, getattr(experiment, "trajectory", None) or {},
                         "config.trajectory")


def _to_tensor(images: np.ndarray) -> Tensor:
    """uint8 ``(B, F, H, W, 3)`` -> float ``(B, 3, F, H, W)`` in ``[-1, 1]``."""
    return torch.from_numpy(images).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


@ENCODERS.register("motion")
class MotionEncoder(ConditionEncoder):
    """Feeds ``motion``: ``(B, c, F / f_t, H / f_s, W / f_s)`` motion latents.

    Sampling: ``trajectories`` - one set ``(K, F, 2)`` of pixel paths for every video, or a list
    of one set a video (already resampled to the clip's frames and scaled to its size, see
    :func:`~vidiff.conditioning.trajectory.read_trajectories`); both guidance branches get it.
    Training: the batch's dense ``flow`` ``(B, F, 2, H, W)`` (``mode: dense``), or tracks
    sampled from it (``mode: sparse``).

    Raises:
        ValueError: a model that needs trajectories called without them; a set of another
            number of frames; an unknown compression or mode.
    """

    arguments = ("trajectories",)

    def __init__(self, cfg: TrajectoryConfig, autoencoder: nn.Module | None = None):
        if cfg.compression not in COMPRESSIONS or cfg.mode not in ("dense", "sparse"):
            raise ValueError(f"trajectory.compression must be one of {COMPRESSIONS} and "
                             f"trajectory.mode dense or sparse, got {cfg.compression!r}, "
                             f"{cfg.mode!r}")
        if cfg.compression == "vae" and autoencoder is None:
            raise ValueError("trajectory.compression vae needs trajectory.autoencoder (a "
                             "VideoAutoencoder trained on flow images)")
        self.cfg, self.autoencoder = cfg, autoencoder

    @classmethod
    def build(cls, experiment: Any, device: torch.device,
              components: dict[str, Any] | None = None) -> "MotionEncoder":
        """The recipe's ``trajectory:`` settings; the trajectory autoencoder is the component
        ``trajectory_autoencoder`` (the diffusion task loads it from ``trajectory.autoencoder``
        and every checkpoint carries it)."""
        return cls(trajectory_config(experiment),
                   (components or {}).get("trajectory_autoencoder"))

    @classmethod
    def videos_given(cls, value: Any) -> int | None:
        """One video a set when a list of several sets is given."""
        value = (value or {}).get("trajectories")
        return len(value) if isinstance(value, (list, tuple)) and len(value) > 1 else None

    @torch.no_grad()
    def latents(self, images: np.ndarray, device: torch.device) -> Tensor:
        """Flow images uint8 ``(B, F, H, W, 3)`` -> motion latents on the latent grid."""
        x = _to_tensor(images).to(device)
        if self.cfg.compression == "vae":
            ae = self.autoencoder
            return ae.latents(x.to(next(ae.parameters()).dtype)).float()
        ft, fs = self.cfg.temporal_factor, self.cfg.spatial_factor
        if self.cfg.compression == "sample":
            return F.avg_pool3d(x[:, :, ::ft], (1, fs, fs))
        return F.avg_pool3d(x, (ft, fs, fs))

    def images(self, tracks: list[np.ndarray], frames: int, size: tuple[int, int]
               ) -> np.ndarray:
        """Flow images ``(B, F, H, W, 3)`` of one set of tracks ``(K, F, 2)`` a video."""
        H, W = size
        out = []
        for tr in tracks:
            tr = np.asarray(tr, np.float32).reshape(-1, frames, 2)
            out.append(trajectory_flow_images(tr, H, W, self.cfg.sigma, self.cfg.max_flow))
        return np.stack(out)

    def for_sampling(self, model: nn.Module, value: Any, num_videos: int, *,
                     device: torch.device, generator: torch.Generator | None,
                     guidance_scale: float, defaults: Any) -> tuple[Tensor, Tensor] | None:
        value = (value or {}).get("trajectories")
        if value is None:
            raise ValueError("this model is trajectory-controlled: pass trajectories= (one set "
                             "(K, F, 2) of pixel paths, or one a video)")
        sets = list(value) if isinstance(value, (list, tuple)) else [value]
        sets = sets * num_videos if len(sets) == 1 else sets
        if len(sets) != num_videos:
            raise ValueError(f"trajectories: {len(sets)} sets for {num_videos} videos")
        frames = np.asarray(sets[0]).shape[1] if np.asarray(sets[0]).ndim == 3 else 0
        for s in sets:
            if np.asarray(s).ndim != 3 or np.asarray(s).shape[-2:] != (frames, 2):
                raise ValueError(f"trajectories must be (K, F, 2) pixel paths, one F for all "
                                 f"sets (the clip's frames), got {np.asarray(s).shape}")
        m = self.latents(self.images(sets, frames, self._size(model)), device)
        return m, m

    def _size(self, model: nn.Module) -> tuple[int, int]:
        """``(H, W)`` in pixels of the clips the model generates."""
        fs = (self.autoencoder.factors[1] if self.autoencoder is not None
              else self.cfg.spatial_factor)
        size = model.sample_shape[1]
        return size * fs, size * fs

    def for_training(self, model: nn.Module, batch: dict, *, device: torch.device,
                     generator: torch.Generator, drop_prob: float) -> Tensor | None:
        if "flow" not in batch:
            raise ValueError("trajectory training needs the clips' dense flow: data.flow: true "
                             "(Moving Shapes, or a latent cache made with `vidiff encode-latents "
                             "--flow`)")
        flow = batch["flow"].numpy()  # (B, F, 2, H, W)
        if self.cfg.mode == "dense":
            images = flow_to_rgb(dense_displacement_maps(flow), self.cfg.max_flow)
        else:
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
            rng = np.random.default_rng(seed)
            tracks = [sample_tracks(f, self.cfg.max_points, self.cfg.grid_stride, rng)
                      for f in flow]
            images = self.images(tracks, flow.shape[1], flow.shape[3:])
        return self.latents(images, device)
