"""Attention over space, over time and across to a context, all through PyTorch's SDPA.

Video blocks work on *frame-folded* tensors ``(B*F, C, H, W)``: everything except temporal layers
is per frame, so folding frames into the batch makes every 2D op (and channels-last memory) apply
directly. An image is a clip of one frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .norms import group_norm

__all__ = ["Attention", "LinearAttention", "SpatialAttention", "TemporalAttention", "RelativePositionBias",
           "attention"]

#: on CPU, bf16/fp16 attention over at most this many queries uses explicit batched matmuls:
#: PyTorch's CPU flash kernel is several times slower there (benchmarks/unet_speed.py)
CPU_MATH_MAX_LEN = 128


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """``softmax(q k^T / sqrt(d) + bias) v`` for ``(..., L, d)`` tensors: SDPA, except short
    low-precision sequences on CPU, which take the (faster there) batched-matmul path."""
    if bias is not None and bias.dtype != torch.bool:
        bias = bias.to(q.dtype)
    if not (q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)
            and q.shape[-2] <= CPU_MATH_MAX_LEN):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    lead, (L, d), S = q.shape[:-2], q.shape[-2:], k.shape[-2]
    s = torch.bmm(q.reshape(-1, L, d), k.reshape(-1, S, d).transpose(1, 2)) * d ** -0.5
    if bias is not None:
        s = s.view(*lead, L, S)
        s = s.masked_fill(~bias, float("-inf")) if bias.dtype == torch.bool else s + bias
        s = s.reshape(-1, L, S)
    p = torch.softmax(s.float(), dim=-1).to(v.dtype)
    return torch.bmm(p, v.reshape(-1, S, v.shape[-1])).view(*lead, L, v.shape[-1])


class Attention(nn.Module):
    """Multi-head attention ``(..., L, C) -> (..., L, C)``, optionally across to ``context``.

    The output projection is zero-initialised, so a residual attention block starts as the
    identity. Any number of leading batch dims is allowed; ``bias`` is an additive float or bool
    mask broadcastable to ``(..., heads, L, S)``.
    """

    def __init__(self, dim: int, heads: int = 4, head_dim: int | None = None,
                 context_dim: int | None = None, zero_init: bool = True):
        super().__init__()
        head_dim = head_dim or dim // heads
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        if zero_init:
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def forward(self, x: Tensor, context: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        ctx = x if context is None else context
        q = rearrange(self.to_q(x), "... l (h d) -> ... h l d", h=self.heads)
        k, v = rearrange(self.to_kv(ctx), "... s (two h d) -> two ... h s d", two=2, h=self.heads)
        out = attention(q, k, v, bias)
        return self.to_out(rearrange(out, "... h l d -> ... l (h d)"))


class LinearAttention(Attention):
    """Linear-cost self-attention (Shen et al. 2021, "efficient attention"): queries softmaxed
    over features, keys over positions, ``out = q (k^T v)``; ``O(L d^2)`` instead of
    ``O(L^2 d)``, for spatial attention at high resolution. ``(..., L, C) -> (..., L, C)``."""

    def forward(self, x: Tensor, context: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        if context is not None or bias is not None:
            raise ValueError("LinearAttention is self-attention without a bias")
        q = rearrange(self.to_q(x), "... l (h d) -> ... h l d", h=self.heads)
        k, v = rearrange(self.to_kv(x), "... s (two h d) -> two ... h s d", two=2, h=self.heads)
        # softmax and matmul stay in the input dtype: their bf16 kernels accumulate in float32,
        # and casting the (L, d) tensors to float32 and back cost ~9% of a bf16 training step
        q, k = q.softmax(dim=-1), k.softmax(dim=-2)
        ctx = (k.transpose(-1, -2) @ v) * self.head_dim ** -0.5  # (..., h, d, d)
        return self.to_out(rearrange(q @ ctx, "... h l d -> ... l (h d)"))


class SpatialAttention(nn.Module):
    """Pre-norm self-attention over the ``H*W`` positions of each frame, then optional
    cross-attention to a context; residual. ``x``: ``(N, C, H, W)``, ``context``: ``(N, L, Dc)``.
    ``kind``: ``"softmax"`` or ``"linear"`` (:class:`LinearAttention`) self-attention;
    ``head_dim``: channels a head (default ``dim // heads``)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None,
                 kind: str = "softmax", head_dim: int | None = None):
        super().__init__()
        if kind not in ("softmax", "linear"):
            raise ValueError(f"spatial attention kind must be softmax or linear, got {kind!r}")
        self.norm = group_norm(dim)
        self.attn = (LinearAttention if kind == "linear" else Attention)(dim, heads, head_dim)
        self.cross = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross = Attention(dim, heads, head_dim, context_dim=context_dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        H = x.shape[2]
        delta = self.attn(rearrange(self.norm(x), "n c h w -> n (h w) c"))
        if self.cross is not None and context is not None:
            stream = rearrange(x, "n c h w -> n (h w) c") + delta
            delta = delta + self.cross(self.norm_cross(stream), context=context)
        return x + rearrange(delta, "n (h w) c -> n c h w", h=H)


class RelativePositionBias(nn.Module):
    """Learned per-head bias ``b[h, clip(j - i)]`` for attention over frames (zero at init)."""

    def __init__(self, heads: int, max_distance: int = 32):
        super().__init__()
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(heads, 2 * max_distance + 1))

    def forward(self, num_frames: int, device: torch.device) -> Tensor:
        pos = torch.arange(num_frames, device=device)
        rel = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance)
        return self.table[:, rel + self.max_distance]  # (heads, F, F)


class TemporalAttention(nn.Module):
    """Pre-norm self-attention over the frames at each pixel, with relative position bias; residual.

    ``x``: ``(B*F, C, H, W)``; ``frame_groups``: optional int ``(B, F)``: frames attend only to
    frames of the same group (joint image-video training appends images as frames, each in a
    group of its own, and a frame alone in its group skips the layer exactly as an image
    input does). Starts as the identity (zero output projection, zero bias). ``head_dim``:
    channels a head (default ``dim // heads``).
    """

    def __init__(self, dim: int, heads: int, max_distance: int = 32, head_dim: int | None = None):
        super().__init__()
        self.norm = group_norm(dim)
        self.attn = Attention(dim, heads, head_dim)
        self.rel_pos = RelativePositionBias(heads, max_distance)

    def forward(self, x: Tensor, num_frames: int, frame_groups: Tensor | None = None) -> Tensor:
        if num_frames == 1:
            return x  # an image: nothing to attend to over time
        N, C, H, W = x.shape
        B = N // num_frames
        h = rearrange(self.norm(x), "(b f) c h w -> b (h w) f c", f=num_frames)
        bias = self.rel_pos(num_frames, x.device)[None, None]  # (1, 1, heads, F, F)
        if frame_groups is not None:
            same = frame_groups[:, :, None] == frame_groups[:, None, :]  # (B, F, F)
            neg = torch.zeros(same.shape, dtype=bias.dtype, device=x.device).masked_fill(
                ~same, float("-inf"))
            bias = bias + neg[:, None, None]
        out = self.attn(h, bias=bias)
        if frame_groups is not None:  # a frame alone in its group is an image: no temporal layer
            alone = (same.sum(-1) == 1)  # (B, F)
            out = out * (~alone).to(out.dtype)[:, None, :, None]
        return x + rearrange(out, "b (h w) f c -> (b f) c h w", h=H, b=B)
