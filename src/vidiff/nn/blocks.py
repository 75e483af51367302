"""Convolutional blocks of the space-time U-Net, on frame-folded ``(B*F, C, H, W)`` tensors.

A 1x3x3 space-only 3D convolution is a 2D 3x3 convolution of the frame-folded tensor, which is
what these blocks use (faster on CPU, channels-last friendly, and exactly the same function).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .norms import AdaGroupNorm, group_norm
from .temporal_conv import TemporalConv

__all__ = ["ResBlock", "Downsample", "Upsample"]


class ResBlock(nn.Module):
    """``x + conv(SiLU(AdaGN(conv(SiLU(GN(x))), emb)))`` with 1x3x3 convs; the second conv is
    zero-initialised. ``x``: ``(N, C_in, H, W)``, ``emb``: ``(N, D)`` -> ``(N, C_out, H, W)``.

    ``temporal_conv``: Make-A-Video's pseudo-3D convolutions (Singer et al. 2022, eq. 3): each
    3x3 convolution is followed by a :class:`~vidiff.nn.TemporalConv` over the clip's
    ``num_frames`` frames (``x`` is then frame-folded ``(B*F, C, H, W)``), initialised to the
    identity, so the block computes exactly what it computes without them until they train.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0,
                 temporal_conv: bool = False, temporal_kernel: int = 3):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = AdaGroupNorm(out_ch, emb_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)
        self.temporal1 = TemporalConv(out_ch, temporal_kernel) if temporal_conv else None
        self.temporal2 = TemporalConv(out_ch, temporal_kernel) if temporal_conv else None

    def forward(self, x: Tensor, emb: Tensor, num_frames: int = 1,
                frame_groups: Tensor | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temporal1 is not None:
            h = self.temporal1(h, num_frames, frame_groups)
        h = self.conv2(self.dropout(F.silu(self.norm2(h, emb))))
        if self.temporal2 is not None:
            h = self.temporal2(h, num_frames, frame_groups)
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided 3x3 convolution halving ``H`` and ``W``."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling then a 3x3 convolution."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
