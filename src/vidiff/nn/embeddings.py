"""Embeddings of scalars (timesteps, fps) as vectors."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal_embedding", "ScalarEmbedding"]


def sinusoidal_embedding(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer-style embedding of a float tensor of any shape ``S`` -> ``S + (dim,)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device,
                                                           dtype=torch.float32) / half)
    args = x.float()[..., None] * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class ScalarEmbedding(nn.Module):
    """Sinusoidal features of ``scale * x`` followed by a two-layer MLP.

    Used for the diffusion time (``x = t`` in ``[0, 1]``, ``scale = 1000``) and for fps.
    Input of any shape ``S``; output ``S + (out_dim,)``.
    """

    def __init__(self, freq_dim: int, out_dim: int, scale: float = 1000.0):
        super().__init__()
        self.freq_dim, self.scale = freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        """Features in float32 (times need the precision), the MLP in its weights' dtype."""
        emb = sinusoidal_embedding(x.float() * self.scale, self.freq_dim)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))
