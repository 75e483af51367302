"""Normalisation layers conditioned on an embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AdaGroupNorm", "GroupNorm", "group_norm"]


class GroupNorm(nn.GroupNorm):
    """GroupNorm that, under autocast, runs in the input's low-precision dtype.

    Autocast promotes ``group_norm`` to float32, which on CPU costs a cast in and out and a slow
    kernel; PyTorch's bf16 kernel accumulates its statistics in float32 anyway, so it is kept.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return F.group_norm(x, self.num_groups, self.weight.to(x.dtype),
                                    self.bias.to(x.dtype), self.eps)
        return super().forward(x)


def group_norm(channels: int, groups: int = 32) -> GroupNorm:
    """GroupNorm with the largest group count <= ``groups`` that divides ``channels``."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return GroupNorm(g, channels, eps=1e-5)


class AdaGroupNorm(nn.Module):
    """Adaptive group normalisation (LVDM/ADM): ``GN(h) * (1 + scale(e)) + shift(e)``.

    ``h``: frame-folded ``(N, C, H, W)``; ``emb``: ``(N, D)`` (one embedding per frame, so per-frame
    noise levels get per-frame modulation). Zero-initialised so it starts as plain GroupNorm.
    """

    def __init__(self, channels: int, emb_dim: int, groups: int = 32):
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.proj = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * channels))
        nn.init.zeros_(self.proj[1].weight)
        nn.init.zeros_(self.proj[1].bias)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.proj(emb)[:, :, None, None].chunk(2, dim=1)
        return torch.addcmul(shift, self.norm(h), 1 + scale)
