"""Make-A-Video's temporal convolution: the 1D half of a pseudo-3D convolution.

Make-A-Video (Singer et al. 2022, section 3.2, eq. 3) factorises a 3D convolution into a 2D
convolution over space followed by a 1D convolution over time,
``Conv_P3D(h) = Conv1D(Conv2D(h) o T) o T``, with the 1D kernel initialised to the identity
(a Dirac delta) so that a network inflated from a text-to-image model starts as that model,
frame by frame. :class:`TemporalConv` is that 1D convolution on frame-folded tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["TemporalConv"]


class TemporalConv(nn.Module):
    """1D convolution over frames at every pixel, ``(B*F, C, H, W) -> (B*F, C, H, W)``.

    ``out[f] = b + sum_k W[:, :, k] x[f + k - r]`` with zero padding at the clip's ends
    (kernel ``2r + 1``). ``frame_groups`` (int ``(B, F)``, joint image-video training) keeps the
    kernel inside a group: a neighbour of another group counts as padding, and a frame alone in
    its group (an image appended to a clip) passes through untouched, as an image input does. A
    clip of one frame is returned as it is (Make-A-Video skips temporal layers on images).

    The kernel starts as the Dirac delta and the bias at zero: the identity at init.

    Args:
        channels: ``C``.
        kernel_size: odd number of frames the kernel spans (3 in Make-A-Video).
    Raises:
        ValueError: an even ``kernel_size``, or ``B*F`` not divisible by ``num_frames``.
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"TemporalConv kernel_size must be odd, got {kernel_size}")
        self.radius = kernel_size // 2
        self.weight = nn.Parameter(torch.zeros(channels, channels, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        with torch.no_grad():
            nn.init.dirac_(self.weight)

    def forward(self, x: Tensor, num_frames: int, frame_groups: Tensor | None = None) -> Tensor:
        if num_frames == 1:
            return x
        N, C, H, W = x.shape
        if N % num_frames:
            raise ValueError(f"TemporalConv: {N} frames do not fold into clips of {num_frames}")
        h = rearrange(x, "(b f) c h w -> b f c h w", f=num_frames)
        r = self.radius
        if frame_groups is None:
            y = F.conv1d(rearrange(h, "b f c h w -> (b h w) c f"), self.weight.to(x.dtype),
                         self.bias.to(x.dtype), padding=r)
            return rearrange(y, "(b h w) c f -> (b f) c h w", h=H, w=W)
        # groups: each tap is a 1x1 map of the neighbour, kept only within the frame's group
        out = h.new_zeros(h.shape) + self.bias.to(x.dtype)[:, None, None]
        g = frame_groups.to(x.device)
        alone = ((g[:, :, None] == g[:, None, :]).sum(-1) == 1)[:, :, None, None, None]
        for k in range(2 * r + 1):
            s = k - r  # this tap reads frame f + s
            lo, hi = max(0, -s), min(num_frames, num_frames - s)
            if lo >= hi:
                continue
            nb = h[:, lo + s:hi + s]
            same = (g[:, lo:hi] == g[:, lo + s:hi + s]).to(x.dtype)[:, :, None, None, None]
            tap = torch.einsum("oc,bfchw->bfohw", self.weight[:, :, k].to(x.dtype), nb)
            out[:, lo:hi] = out[:, lo:hi] + tap * same
        out = torch.where(alone, h, out)  # a frame alone in its group is an image: untouched
        return rearrange(out, "b f c h w -> (b f) c h w")
