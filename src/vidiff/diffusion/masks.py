"""Which frames are given: the per-frame masks of frame-conditioned training and sampling.

One mechanism covers every mode (DESIGN.md, principle 3): ``none`` (unconditional), ``prefix``
(the first ``k`` frames: prediction / extension), ``sparse`` (every ``stride``-th frame:
interpolation), ``first`` (frame 0: image-to-video). A model trained on a mix of them is one
network for all (LVDM); the given frames carry their own noise level (``cond_t``), drawn up to
``max_cond_t`` in training for LVDM's conditional latent perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..ranges import ranged

__all__ = ["FrameMaskConfig", "MASK_MODES", "frame_mask", "mode_mask", "sample_frame_masks",
           "noise_given_frames"]

MASK_MODES = ("none", "prefix", "sparse", "first")


@dataclass
class FrameMaskConfig:
    """Training mix of conditioning modes (weights need not sum to 1)."""

    none: float = ranged(1.0, ">= 0")
    prefix: float = ranged(0.0, ">= 0")
    sparse: float = ranged(0.0, ">= 0")
    first: float = ranged(0.0, ">= 0")
    #: prefix length k is drawn from 1..max_prefix (None: up to F - 1)
    max_prefix: int | None = ranged(None, ">= 1")
    #: sparse mode gives frames 0, stride, 2 stride, ...
    sparse_stride: int = ranged(4, ">= 2")
    #: given frames are noised to s ~ U(0, max_cond_t) (0 = clean)
    max_cond_t: float = ranged(0.0, "[0, 1]")

    @property
    def active(self) -> bool:
        return (self.prefix + self.sparse + self.first) > 0


def mode_mask(mode: str, num_frames: int, k: int = 1, stride: int = 4,
              batch: int = 1, device: torch.device | str = "cpu") -> Tensor:
    """Bool ``(batch, num_frames)`` mask of one mode (``k``: prefix length)."""
    m = torch.zeros(batch, num_frames, dtype=torch.bool, device=device)
    if mode == "none":
        return m
    if mode == "prefix":
        if not 0 < k < num_frames:
            raise ValueError(f"prefix length must be in 1..{num_frames - 1}, got {k}")
        m[:, :k] = True
    elif mode == "sparse":
        if stride < 2:
            raise ValueError("sparse stride must be >= 2")
        m[:, ::stride] = True
    elif mode == "first":
        m[:, 0] = True
    else:
        raise ValueError(f"unknown mask mode {mode!r}; choose one of {MASK_MODES}")
    return m


def sample_frame_masks(cfg: FrameMaskConfig, batch: int, num_frames: int,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw one mode per sample from the mix: ``(given (B, F) bool, cond_t (B,))``."""
    w = torch.tensor([cfg.none, cfg.prefix, cfg.sparse, cfg.first], dtype=torch.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("frame mask weights must be >= 0 and not all zero")
    modes = torch.multinomial(w, batch, replacement=True, generator=generator)
    kmax = min(cfg.max_prefix or num_frames - 1, num_frames - 1)
    ks = torch.randint(1, max(kmax, 1) + 1, (batch,), generator=generator)
    given = torch.zeros(batch, num_frames, dtype=torch.bool)
    for b in range(batch):
        name = MASK_MODES[int(modes[b])]
        given[b] = mode_mask(name, num_frames, int(ks[b]), cfg.sparse_stride)[0]
    cond_t = torch.rand(batch, generator=generator) * cfg.max_cond_t
    return given, cond_t


def frame_mask(num_frames: int, given: list[int] | range, batch: int = 1,
               device: torch.device | str = "cpu") -> Tensor:
    """Bool ``(batch, num_frames)`` mask, True at the ``given`` frame indices."""
    m = torch.zeros(batch, num_frames, dtype=torch.bool, device=device)
    idx = list(given)
    if any(i < 0 or i >= num_frames for i in idx):
        raise ValueError(f"given frame indices {idx} out of range for {num_frames} frames")
    m[:, idx] = True
    return m


def noise_given_frames(t: Tensor, given: Tensor | None, cond_t: Tensor | float) -> Tensor:
    """Per-frame times: ``t`` where frames are generated, ``cond_t`` where they are given.

    ``t``: ``(B,)`` or ``(B, F)``; ``given``: bool ``(B, F)``; ``cond_t``: scalar or ``(B,)``.
    Returns ``(B, F)`` (or ``t`` unchanged when ``given`` is ``None``).
    """
    if given is None:
        return t
    B, F = given.shape
    t = t.reshape(B, 1).expand(B, F) if t.ndim == 1 else t
    c = torch.as_tensor(cond_t, dtype=t.dtype, device=t.device)
    c = c.reshape(-1, 1).expand(B, F) if c.ndim == 1 else c.expand(B, F)
    return torch.where(given, c, t)
