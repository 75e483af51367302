"""The spatial-temporal diffusion transformer (ST-DiT) of Open-Sora that Tora builds on (Zhang
et al. 2024, Sec. 3.1): video latents patchified by ``(1, p, p)``, blocks alternating spatial
and temporal self-attention (:class:`~vidiff.nn.transformer.STBlock`: RoPE over time, 2D sin-cos
positions over space scaled to the resolution), text cross-attention, adaLN-single timestep
modulation (one shared projection of the timestep, a learned table a block), temporal blocks
zero-initialised so the network starts as a per-frame image DiT.

Times are per frame: ``t`` ``(B, F)`` modulates each frame by its own time, so a given (clean)
frame is modulated with ``t = 0`` - image conditioning is the frame-mask mechanism of the
diffusion loss and the pipelines with ``cond_t = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ...nn import ScalarEmbedding
from ...nn.transformer import SpatialBlock, STBlock, TemporalBlock, sincos_2d
from ...ranges import ranged
from ..modeling import ModelMixin
from .motion import MotionFuser, TrajectoryExtractor, extract_motion

__all__ = ["STDiTConfig", "STDiT"]


@dataclass
class STDiTConfig:
    in_channels: int = ranged(4, ">= 1")
    #: None = in_channels
    out_channels: int | None = ranged(None, ">= 1")
    #: spatial patch ``p`` (patches are ``1 x p x p``: frames are never merged)
    patch_size: int = ranged(2, ">= 1")
    hidden_size: int = ranged(192, ">= 4")
    #: pairs of (spatial, temporal) blocks
    depth: int = ranged(4, ">= 1")
    num_heads: int = ranged(3, ">= 1")
    mlp_ratio: float = ranged(4.0, "> 0")
    #: text tokens' width for cross-attention (None: no text)
    context_dim: int | None = ranged(None, ">= 1")
    #: text cross-attention in the temporal blocks too (Open-Sora's STDiT, which Tora builds
    #: on); False: in the spatial blocks only (Latte)
    temporal_cross_attention: bool = True
    #: fps embedded and added to the timestep embedding (zero at init)
    fps_conditioning: bool = False
    #: the patch grid side the sin-cos positions are scaled to (None: unscaled)
    base_size: int | None = ranged(None, ">= 1")
    gradient_checkpointing: bool = False
    #: Tora's trajectory control: channels of the motion latents ``g_m`` (the trajectory
    #: autoencoder's, on this model's latent grid); None = no trajectory extractor and fuser
    motion_channels: int | None = ranged(None, ">= 1")
    #: width of the extractor's features (None: hidden_size)
    motion_dim: int | None = ranged(None, ">= 1")
    #: the motion-guidance fuser: "adanorm", "concat" or "cross"
    motion_fuser: str = "adanorm"
    #: blocks that fuse motion: "temporal" (Tora's default), "spatial" or "all"
    motion_placement: str = "temporal"
    #: the clip it generates, in its own space (filled from the data when training)
    sample_size: int | None = ranged(None, ">= 1")
    num_frames: int | None = ranged(None, ">= 1")
    extra: dict = field(default_factory=dict)


class STDiT(ModelMixin):
    """``forward(x, t, *, context=None, fps=None)``.

    Args:
        x: latents ``(B, C, F, H, W)``, ``H, W`` divisible by ``patch_size``; any ``F``, ``H``,
            ``W`` at inference.
        t: ``(B,)`` or per-frame ``(B, F)`` times in ``[0, 1]``.
        context: ``(B, L, context_dim)`` text tokens.
        fps: ``(B,)`` frames per second (with ``fps_conditioning``).
        motion: ``(B, motion_channels, F, H, W)`` motion latents (Tora's trajectory
            autoencoder on the flow images of the requested trajectories).
    Returns:
        ``(B, out_channels, F, H, W)``.
    Raises:
        ValueError: a size not divisible by the patch, a missing fps.
    """

    config_class = STDiTConfig

    def __init__(self, config: STDiTConfig):
        super().__init__()
        self.config = c = config
        D, p = c.hidden_size, c.patch_size
        c.out_channels = c.out_channels or c.in_channels  # (pipelines read it from the config)
        self.out_channels = c.out_channels
        self.patch_embed = nn.Conv3d(c.in_channels, D, (1, p, p), stride=(1, p, p))
        self.t_embed = ScalarEmbedding(256, D, scale=1000.0)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.fps_embed = ScalarEmbedding(256, D, scale=1.0) if c.fps_conditioning else None
        if self.fps_embed is not None:
            nn.init.zeros_(self.fps_embed.mlp[-1].weight)
            nn.init.zeros_(self.fps_embed.mlp[-1].bias)
        self.blocks = nn.ModuleList()
        for _ in range(c.depth):
            self.blocks.append(SpatialBlock(D, c.num_heads, c.context_dim, c.mlp_ratio))
            self.blocks.append(TemporalBlock(
                D, c.num_heads, c.context_dim if c.temporal_cross_attention else None,
                c.mlp_ratio))
        self.extractor, self.fusers = None, nn.ModuleDict()
        if c.motion_channels is not None:
            if c.motion_placement not in ("temporal", "spatial", "all"):
                raise ValueError(f"motion_placement must be temporal, spatial or all, got "
                                 f"{c.motion_placement!r}")
            fused = [i for i, b in enumerate(self.blocks)
                     if c.motion_placement in ("all", b.axis)]
            md = c.motion_dim or D
            self.extractor = TrajectoryExtractor(c.motion_channels, md, p, len(fused))
            for i in fused:
                self.fusers[str(i)] = MotionFuser(c.motion_fuser, D, md, c.num_heads)
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.final_table = nn.Parameter(torch.randn(2, D) / D ** 0.5)
        self.proj_out = nn.Linear(D, p * p * self.out_channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    @property
    def pipeline_class(self) -> str | None:
        """``TrajectoryPipeline`` for a trajectory-controlled model (its checkpoints load as
        one), else the diffusion task's default."""
        return "TrajectoryPipeline" if self.config.motion_channels is not None else None

    @property
    def accepted_conditions(self) -> frozenset[str]:  # type: ignore[override]
        """``context`` with cross-attention, ``fps`` and ``motion`` as configured."""
        c = self.config
        return frozenset(({"context"} if c.context_dim else set())
                         | ({"fps"} if c.fps_conditioning else set())
                         | ({"motion"} if c.motion_channels is not None else set()))

    def _motion(self, motion: Tensor, shape: torch.Size) -> list[Tensor]:
        """The extractor's features of motion latents on the latent grid of ``x``."""
        return extract_motion(self.extractor, motion, self.config.motion_channels, tuple(shape),
                              self.patch_embed.weight.dtype)

    def _run(self, block: STBlock, x: Tensor, t_mod: Tensor, context: Tensor | None) -> Tensor:
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, t_mod, context, use_reentrant=False)
        return block(x, t_mod, context)

    def forward(self, x: Tensor, t: Tensor, *, context: Tensor | None = None,
                fps: Tensor | None = None, motion: Tensor | None = None) -> Tensor:
        c, p = self.config, self.config.patch_size
        if x.ndim != 5:
            raise ValueError(f"STDiT takes latents (B, C, F, H, W), got {tuple(x.shape)}")
        B, _, Fr, H, W = x.shape
        if H % p or W % p:
            raise ValueError(f"H and W must be divisible by the patch size {p}, got {H}x{W}")
        h, w = H // p, W // p
        tokens = rearrange(self.patch_embed(x), "b d f h w -> b f (h w) d")
        tokens = tokens + sincos_2d(h, w, c.hidden_size, c.base_size, x.device).to(tokens.dtype)
        t = t.to(x.device).float()
        t = t.reshape(B, 1).expand(B, Fr) if t.ndim == 1 else t
        emb = self.t_embed(t)  # (B, F, D)
        if self.fps_embed is not None:
            if fps is None:
                raise ValueError("this model is fps-conditioned: pass fps=(B,)")
            emb = emb + self.fps_embed(fps.float().reshape(B, 1)).expand(B, Fr, -1)
        t_mod = self.t_block(emb).reshape(B, Fr, 6, -1)
        feats = iter(self._motion(motion, x.shape) if motion is not None else ())
        for i, block in enumerate(self.blocks):
            tokens = self._run(block, tokens, t_mod, context)
            if motion is not None and str(i) in self.fusers:
                tokens = self.fusers[str(i)](tokens, next(feats), (h, w))
        shift, scale = (self.final_table[None, None] + emb[:, :, None]).unbind(2)
        out = self.proj_out(self.norm_out(tokens) * (1 + scale[:, :, None]) + shift[:, :, None])
        return rearrange(out, "b f (h w) (p q c) -> b c f (h p) (w q)", h=h, p=p, q=p)
