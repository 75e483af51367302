"""Tora's trajectory extractor (TE) after the trajectory autoencoder, and its motion-guidance
fuser (MGF) (Zhang et al. 2024, Sec. 3.2).

* :class:`TrajectoryExtractor`: motion latents ``g_m`` ``(B, c, F, h, w)`` on the denoiser's
  latent grid -> patchified ``(1, p, p)`` -> a stack of convolutions with skips,
  ``f_i = Conv_i(f_{i-1}) + f_{i-1}``, one feature ``(B, F, S, D)`` per fused block;
* :class:`MotionFuser`, three ways into the block's hidden tokens ``h`` ``(B, F, S, D)``:
  ``"adanorm"`` ``h = gamma(f) h + beta(f) + h`` (the paper's best), ``"concat"``
  ``h = Conv([h, f]) + h``, ``"cross"`` cross-attention from ``h`` to ``f`` of the same frame.
  Every variant's output layer is zero at init ("vital": the adapter starts as the identity).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ...nn.attention import Attention

__all__ = ["FUSERS", "TrajectoryExtractor", "MotionFuser", "extract_motion"]

FUSERS = ("adanorm", "concat", "cross")


def _frame_conv(cin: int, cout: int, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    if zero:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


class TrajectoryExtractor(nn.Module):
    """``forward(g_m)`` -> ``num_features`` tensors ``(B, F, S, D)``: ``g_m`` ``(B, c, F,
    H', W')`` patchified by ``p`` to the token grid ``h x w`` (``H' = h p``), then
    ``f_i = Conv_i(f_{i-1}) + f_{i-1}`` (3x3 per frame, SiLU between)."""

    def __init__(self, in_channels: int, dim: int, patch_size: int, num_features: int):
        super().__init__()
        p = patch_size
        self.patch = nn.Conv3d(in_channels, dim, (1, p, p), stride=(1, p, p))
        self.convs = nn.ModuleList(nn.Sequential(nn.SiLU(), _frame_conv(dim, dim))
                                   for _ in range(num_features))

    def forward(self, g_m: Tensor) -> list[Tensor]:
        B, _, Fr = g_m.shape[:3]
        f = rearrange(self.patch(g_m), "b d f h w -> (b f) d h w")
        out = []
        for conv in self.convs:
            f = conv(f) + f
            out.append(rearrange(f, "(b f) d h w -> b f (h w) d", b=B, f=Fr))
        return out


class MotionFuser(nn.Module):
    """Fuse a motion feature ``f`` ``(B, F, S, Dm)`` into tokens ``h`` ``(B, F, S, D)`` of an
    ``hw = (h, w)`` grid (``S = h w``); identity at init."""

    def __init__(self, kind: str, dim: int, motion_dim: int, heads: int = 1):
        super().__init__()
        if kind not in FUSERS:
            raise ValueError(f"motion fuser must be one of {FUSERS}, got {kind!r}")
        self.kind = kind
        if kind == "adanorm":
            self.gamma = _frame_conv(motion_dim, dim, zero=True)
            self.beta = _frame_conv(motion_dim, dim, zero=True)
        elif kind == "concat":
            self.conv = _frame_conv(dim + motion_dim, dim, zero=True)
        else:
            self.norm = nn.LayerNorm(dim)
            self.attn = Attention(dim, heads, context_dim=motion_dim)  # zero output at init

    def forward(self, h: Tensor, f: Tensor, hw: tuple[int, int]) -> Tensor:
        B, Fr = h.shape[:2]
        if self.kind == "cross":
            return h + self.attn(self.norm(h), context=f)
        grid = lambda t: rearrange(t, "b f (y x) d -> (b f) d y x", y=hw[0])  # noqa: E731
        back = lambda t: rearrange(t, "(b f) d y x -> b f (y x) d", b=B)  # noqa: E731
        if self.kind == "adanorm":
            fm = grid(f)
            return h * back(self.gamma(fm)) + back(self.beta(fm)) + h
        return h + back(self.conv(torch.cat([grid(h), grid(f)], dim=1)))


def extract_motion(extractor: TrajectoryExtractor | None, motion: Tensor, channels: int | None,
                   shape: tuple[int, ...], dtype: torch.dtype) -> list[Tensor]:
    """The extractor's features of motion latents ``(B, channels, F, H, W)`` on the grid of a
    denoiser input of ``shape`` (checked: a model without trajectory control, or latents of
    another shape, is a one-line ``ValueError``)."""
    if extractor is None:
        raise ValueError("this model has no trajectory control (motion_channels is None)")
    want = (shape[0], channels, *shape[2:])
    if tuple(motion.shape) != want:
        raise ValueError(f"motion latents must be {want} for this input, got "
                         f"{tuple(motion.shape)}")
    return extractor(motion.to(dtype))
