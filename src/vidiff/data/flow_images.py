"""Flow images of Moving Shapes clips: the training data of Tora's trajectory autoencoder
(``data.kind: trajectory_flow``), dense flow and spread sparse tracks alike, coloured as the
motion condition colours them (:mod:`vidiff.conditioning.trajectory`)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..conditioning.motion import TrajectoryConfig
from ..conditioning.trajectory import (dense_displacement_maps, flow_to_rgb, sample_tracks,
                                       trajectory_flow_images)
from ..ranges import build_checked
from ..registry import DATASETS
from .datasets import frames_to_tensor
from .moving_shapes import MovingShapesConfig, generate_clip

__all__ = ["FlowImageDataset"]


class FlowImageDataset(Dataset):
    """Item ``i``: the flow images of Moving Shapes clip ``seed * 1_000_003 + i`` as
    ``{"video": (3, F, H, W)}`` in ``[-1, 1]``: its dense flow, or (with probability
    ``sparse_prob``) 1..``max_points`` tracks sampled from it and spread."""

    def __init__(self, cfg: MovingShapesConfig, traj: TrajectoryConfig, seed: int = 0,
                 sparse_prob: float = 0.5, length: int = 10 ** 9):
        self.cfg, self.traj, self.seed, self.length = cfg, traj, seed, length
        self.sparse_prob = sparse_prob

    def __len__(self) -> int:
        return self.length

    @property
    def clip_shape(self) -> tuple[int, int]:
        return self.cfg.num_frames, self.cfg.size

    def __getitem__(self, i: int) -> dict:
        seed = self.seed * 1_000_003 + int(i)
        flow = generate_clip(self.cfg, seed).flow
        rng = np.random.default_rng([seed, 5])
        t = self.traj
        if rng.random() < self.sparse_prob:
            tracks = sample_tracks(flow, t.max_points, t.grid_stride, rng)
            img = trajectory_flow_images(tracks, *flow.shape[2:], t.sigma, t.max_flow)
        else:
            img = flow_to_rgb(dense_displacement_maps(flow), t.max_flow)
        return {"video": frames_to_tensor(img)}


@DATASETS.register("trajectory_flow")
def trajectory_flow_dataset(d, seed: int) -> FlowImageDataset:
    """``data.kind: trajectory_flow``: flow images of ``data.moving_shapes`` clips (half dense
    flow, half spread tracks), drawn and coloured as ``data.trajectory`` says."""
    traj = build_checked(TrajectoryConfig, d.trajectory or {}, "config.data.trajectory")
    return FlowImageDataset(d.moving_shapes, traj, seed)
