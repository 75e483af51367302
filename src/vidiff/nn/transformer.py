"""Diffusion-transformer blocks over video tokens ``(B, F, S, D)`` (``F`` frames of ``S``
spatial tokens): Open-Sora's spatial-temporal DiT blocks with adaLN-single modulation
(PixArt-α), rotary position embedding over time and 2D sin-cos positions over space.

* :func:`rope` - rotary embedding (Su et al. 2021) of ``(..., L, d)`` at positions ``(L,)``;
* :func:`sincos_2d` - fixed 2D sin-cos positions of an ``h x w`` grid, scaled so that any
  resolution spans the same ``base_size`` range (PixArt's ``pe_interpolation``);
* :class:`STBlock` - pre-norm self-attention along one axis (``"spatial"``: the tokens of a
  frame; ``"temporal"``: the frames at a token, with RoPE), cross-attention to a context, an
  MLP; each modulated by ``shift, scale, gate`` = the block's learned table plus the shared
  timestep projection (adaLN-single), per frame, so frames at different noise levels (a given
  first frame at ``t = 0``) are modulated by their own time.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from .attention import Attention, attention

__all__ = ["rope", "sincos_2d", "STBlock", "SpatialBlock", "TemporalBlock", "modulate"]


def rope(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """Rotate the feature pairs ``(x_i, x_{i + d/2})`` of ``x`` ``(..., L, d)`` (``d`` even) by
    ``positions * base^(-2i/d)``: attention scores then depend on relative positions only."""
    d = x.shape[-1]
    half = d // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = positions.float()[:, None] * freqs  # (L, half)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def sincos_2d(h: int, w: int, dim: int, base_size: int | None = None,
              device: torch.device | str = "cpu") -> Tensor:
    """``(h * w, dim)`` fixed positions of a row-major grid: half the channels encode the row,
    half the column (each ``[sin, cos]`` at ``dim / 4`` frequencies). With ``base_size`` the grid
    coordinates are scaled by ``base_size / h`` and ``base_size / w``, so every resolution covers
    the positions a ``base_size`` grid does."""
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    sy = (base_size / h) if base_size else 1.0
    sx = (base_size / w) if base_size else 1.0
    y = torch.arange(h, device=device, dtype=torch.float32) * sy
    x = torch.arange(w, device=device, dtype=torch.float32) * sx
    gy, gx = torch.meshgrid(y, x, indexing="ij")
    q = dim // 4
    freqs = 1.0 / 10000 ** (torch.arange(q, device=device, dtype=torch.float32) / q)

    def enc(p: Tensor) -> Tensor:
        a = p.reshape(-1, 1) * freqs
        return torch.cat([a.sin(), a.cos()], dim=1)

    return torch.cat([enc(gy), enc(gx)], dim=1)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``x (B, F, S, D) * (1 + scale) + shift`` with per-frame ``(B, F, D)`` shift and scale."""
    return x * (1 + scale[:, :, None]) + shift[:, :, None]


class _SelfAttention(nn.Module):
    """Multi-head self-attention ``(..., L, D)``, RoPE on queries and keys when positions are
    given; the output projection zero-initialised when ``zero_init``."""

    def __init__(self, dim: int, heads: int, zero_init: bool):
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"hidden size {dim} must split into {heads} heads of an even width")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        if zero_init:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "... l (three h d) -> three ... h l d", three=3,
                            h=self.heads)
        if positions is not None:
            q, k = rope(q, positions), rope(k, positions)
        return self.proj(rearrange(attention(q, k, v), "... h l d -> ... l (h d)"))


class STBlock(nn.Module):
    """One spatial or temporal DiT block on tokens ``x`` ``(B, F, S, D)``.

    ``forward(x, t_mod, context=None)``: ``t_mod`` ``(B, F, 6, D)`` is the shared timestep
    projection (per frame); ``context`` ``(B, L, Dc)`` the text tokens (cross-attention from
    every token). A ``zero_init`` block (Open-Sora's temporal blocks) has its attention,
    cross-attention and MLP outputs at zero, so it starts as the identity.
    """

    def __init__(self, dim: int, heads: int, axis: str, context_dim: int | None = None,
                 mlp_ratio: float = 4.0, zero_init: bool = False):
        super().__init__()
        if axis not in ("spatial", "temporal"):
            raise ValueError(f"axis must be 'spatial' or 'temporal', got {axis!r}")
        self.axis = axis
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = _SelfAttention(dim, heads, zero_init)
        self.cross = Attention(dim, heads, context_dim=context_dim) if context_dim else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, dim))
        if zero_init:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / math.sqrt(dim))

    def forward(self, x: Tensor, t_mod: Tensor, context: Tensor | None = None) -> Tensor:
        B, Fr, S, D = x.shape
        mods = (self.scale_shift_table[None, None] + t_mod).unbind(2)  # 6 x (B, F, D)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mods
        h = modulate(self.norm1(x), shift_a, scale_a)
        if self.axis == "spatial":
            a = self.attn(h)
        else:
            pos = torch.arange(Fr, device=x.device)
            a = rearrange(self.attn(rearrange(h, "b f s d -> b s f d"), pos),
                          "b s f d -> b f s d")
        x = x + gate_a[:, :, None] * a
        if self.cross is not None and context is not None:
            c = self.cross(rearrange(x, "b f s d -> b (f s) d"), context=context)
            x = x + rearrange(c, "b (f s) d -> b f s d", f=Fr)
        h = modulate(self.norm2(x), shift_m, scale_m)
        return x + gate_m[:, :, None] * self.mlp(h)




class SpatialBlock(STBlock):
    """An :class:`STBlock` attending over the tokens of each frame."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None,
                 mlp_ratio: float = 4.0, zero_init: bool = False):
        super().__init__(dim, heads, "spatial", context_dim, mlp_ratio, zero_init)


class TemporalBlock(STBlock):
    """An :class:`STBlock` attending over the frames at each token (RoPE), zero at init: what
    ``train.trainable: [TemporalBlock, ...]`` selects in adapter training."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None,
                 mlp_ratio: float = 4.0, zero_init: bool = True):
        super().__init__(dim, heads, "temporal", context_dim, mlp_ratio, zero_init)
