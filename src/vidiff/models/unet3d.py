"""The factorised space-time U-Net of VDM (also LVDM's latent backbone).

* 1x3x3 (space-only) convolutions in residual blocks, the timestep through adaptive group norm;
* at chosen levels, spatial self-attention (plus cross-attention to a context when configured)
  followed by temporal self-attention over frames with a relative position bias;
* images ``(B, C, H, W)`` and videos ``(B, C, F, H, W)`` go through the same network: an image is
  one frame and skips temporal attention; for joint image-video training images are appended as
  frames with ``frame_groups`` that keep temporal attention from mixing them;
* per-frame timesteps ``t`` of shape ``(B, F)`` (frame conditioning, latent perturbation);
* optional mask channel (LVDM), class labels or a text context through cross-attention, fps.

Internally the clip is folded to ``(B*F, C, H, W)`` and kept channels-last where asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..nn import Downsample, ResBlock, ScalarEmbedding, SpatialAttention, TemporalAttention, Upsample
from ..nn import group_norm
from ..ranges import ranged
from .modeling import ModelMixin
from .tora.motion import MotionFuser, TrajectoryExtractor, extract_motion

__all__ = ["UNet3DConfig", "UNet3D"]


@dataclass
class UNet3DConfig:
    in_channels: int = ranged(3, ">= 1")
    out_channels: int = ranged(3, ">= 1")
    model_channels: int = ranged(64, ">= 1")
    channel_mult: tuple[int, ...] = ranged((1, 2, 4), ">= 1")
    num_res_blocks: int = ranged(2, ">= 1")
    #: indices of the levels (0 = full resolution) with spatial attention (+ cross-attention)
    attention_levels: tuple[int, ...] = ranged((1, 2), ">= 0")
    #: levels with temporal attention; None = the same as ``attention_levels``
    temporal_attention_levels: tuple[int, ...] | None = ranged(None, ">= 0")
    temporal_attention: bool = True
    #: Make-A-Video's pseudo-3D convolutions: every 3x3 convolution of the residual blocks is
    #: followed by a 1D convolution over frames (``temporal_kernel`` frames), identity at init
    temporal_conv: bool = False
    temporal_kernel: int = ranged(3, ">= 1")
    #: spatial self-attention: "softmax", or "linear" (linear cost, for high resolutions)
    spatial_attention: str = "softmax"
    head_channels: int = ranged(32, ">= 1")
    #: heads at every attention layer, each ``head_channels`` wide, so the attention width is
    #: ``num_heads * head_channels`` whatever the level's width (video-diffusion-pytorch's
    #: ``attn_heads`` x ``attn_dim_head``); None = ``width // head_channels`` heads, as wide
    #: as the level
    num_heads: int | None = ranged(None, ">= 1")
    max_relative_distance: int = ranged(32, ">= 1")
    dropout: float = ranged(0.0, "[0, 1)")
    #: cross-attention context width (text tokens / class embeddings); None = no cross-attention
    context_dim: int | None = ranged(None, ">= 1")
    #: class-conditional: labels 0..num_classes-1, label num_classes is the "null" class for CFG
    num_classes: int | None = ranged(None, ">= 1")
    #: how class labels enter: "add" (an embedding added to the timestep embedding, so every
    #: ResBlock sees it; zero at init) or "cross_attention" (one context token)
    class_embedding: str = "add"
    #: LVDM mask channel: an extra input channel telling which frames are given
    mask_channel: bool = False
    #: LaMD's motion generator: channels of a spatially aligned ``content`` condition (the
    #: MCD-VAE's first-frame features at the latent's resolution) concatenated to the input
    content_channels: int | None = ranged(None, ">= 1")
    #: Tora's trajectory control on the U-Net: channels of the motion latents (on this model's
    #: input grid); a trajectory extractor and a motion-guidance fuser after every temporal
    #: attention (zero at init). None = none
    motion_channels: int | None = ranged(None, ">= 1")
    #: the fuser: "adanorm", "concat" or "cross"
    motion_fuser: str = "adanorm"
    #: Make-A-Video fps conditioning: fps embedded and added to the time embedding (its output
    #: layer zero at init, so adding it to a trained model changes nothing until it trains)
    fps_conditioning: bool = False
    #: channels-last memory: faster convs on GPUs, but slower GroupNorm on CPU (measured)
    channels_last: bool = False
    gradient_checkpointing: bool = False
    #: the clip it generates, in its own space (latent frames / size for a latent model):
    #: pipelines take their output shape from here (filled from the data when training)
    sample_size: int | None = ranged(None, ">= 1")
    num_frames: int | None = ranged(None, ">= 1")
    extra: dict = field(default_factory=dict)


class UNet3D(ModelMixin):
    """``forward(x, t, *, context=None, class_labels=None, frame_mask=None, frame_groups=None,
    fps=None)``.

    Args:
        x: ``(B, C, F, H, W)`` video or ``(B, C, H, W)`` image batch; ``H, W`` divisible by
            ``2 ** (len(channel_mult) - 1)``.
        t: ``(B,)`` or ``(B, F)`` diffusion times in ``[0, 1]``.
        context: ``(B, L, context_dim)`` tokens for cross-attention.
        class_labels: ``(B,)`` long; added to the time embedding or one context token.
        frame_mask: bool ``(B, F)``: given frames (only with ``mask_channel``).
        frame_groups: int ``(B, F)``: temporal attention only within a group.
        fps: ``(B,)`` frames per second (only with ``fps_conditioning``).
        content: ``(B, content_channels, H, W)``: concatenated to the input (only with
            ``content_channels``; LaMD's motion generator).
        motion: ``(B, motion_channels, F, H, W)`` motion latents (only with
            ``motion_channels``; Tora's trajectory control on the U-Net).
    Returns:
        the prediction, shaped like ``x`` with ``out_channels`` channels.
    """

    config_class = UNet3DConfig

    def __init__(self, config: UNet3DConfig):
        super().__init__()
        self.config = c = config
        ch = c.model_channels
        emb_dim = 4 * ch
        self.time_embed = ScalarEmbedding(ch, emb_dim, scale=1000.0)
        self.fps_embed = ScalarEmbedding(ch, emb_dim, scale=1.0) if c.fps_conditioning else None
        if self.fps_embed is not None:
            nn.init.zeros_(self.fps_embed.mlp[-1].weight)
            nn.init.zeros_(self.fps_embed.mlp[-1].bias)
        ctx_dim = c.context_dim
        self.class_embed = None
        if c.num_classes is not None:
            if c.class_embedding == "add":
                self.class_embed = nn.Embedding(c.num_classes + 1, emb_dim)
                nn.init.zeros_(self.class_embed.weight)  # unconditional at init (fine-tuning)
            elif c.class_embedding == "cross_attention":
                ctx_dim = ctx_dim or emb_dim
                self.class_embed = nn.Embedding(c.num_classes + 1, ctx_dim)
            else:
                raise ValueError(f"class_embedding must be 'add' or 'cross_attention', "
                                 f"got {c.class_embedding!r}")
        self._ctx_dim = ctx_dim
        in_ch = c.in_channels + (1 if c.mask_channel else 0) + (c.content_channels or 0)
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)

        t_levels = c.attention_levels if c.temporal_attention_levels is None \
            else c.temporal_attention_levels

        levels = len(c.channel_mult)
        for name, given in (("attention_levels", c.attention_levels),
                            ("temporal_attention_levels", c.temporal_attention_levels)):
            bad = [lv for lv in given or () if not 0 <= lv < levels]
            if bad:
                raise ValueError(f"UNet3D {name}: level {bad[0]} does not exist (channel_mult "
                                 f"{tuple(c.channel_mult)} makes levels 0..{levels - 1})")
        if c.num_heads is not None and c.num_heads < 1:
            raise ValueError(f"num_heads must be at least 1 (or null), got {c.num_heads}")

        def res(cin: int, cout: int) -> ResBlock:
            return ResBlock(cin, cout, emb_dim, c.dropout, c.temporal_conv, c.temporal_kernel)

        self.motion_extractor = None
        if c.motion_channels is not None:
            self.motion_extractor = TrajectoryExtractor(c.motion_channels, ch, 1, 1)

        def motion(block: dict, width: int) -> dict:
            """The block with a motion fuser after its temporal attention, when it has one."""
            temporal = any(isinstance(m, TemporalAttention) for m in block.get("attn", ()))
            if self.motion_extractor is None or not temporal:
                return block
            return {**block, "motion": MotionFuser(c.motion_fuser, width, ch)}

        def attn(level: int, width: int) -> nn.ModuleList | None:
            heads = c.num_heads or max(1, width // c.head_channels)
            head_dim = c.head_channels if c.num_heads else width // heads
            mods = []
            if level in c.attention_levels:
                mods.append(SpatialAttention(width, heads, ctx_dim, c.spatial_attention, head_dim))
            if c.temporal_attention and level in t_levels:
                mods.append(TemporalAttention(width, heads, c.max_relative_distance, head_dim))
            return nn.ModuleList(mods) if mods else None

        self.down = nn.ModuleList()
        skips = [ch]
        cur = ch
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                out = ch * mult
                self.down.append(nn.ModuleDict(motion(
                    {"res": res(cur, out), **({"attn": a} if (a := attn(level, out)) else {})},
                    out)))
                cur = out
                skips.append(cur)
            if level < len(c.channel_mult) - 1:
                self.down.append(nn.ModuleDict({"down": Downsample(cur)}))
                skips.append(cur)
        deepest = len(c.channel_mult) - 1
        self.mid = nn.ModuleList([
            nn.ModuleDict(motion({"res": res(cur, cur),
                                  **({"attn": a} if (a := attn(deepest, cur)) else {})}, cur)),
            nn.ModuleDict({"res": res(cur, cur)}),
        ])
        self.up = nn.ModuleList()
        for level in reversed(range(len(c.channel_mult))):
            for i in range(c.num_res_blocks + 1):
                out = ch * c.channel_mult[level]
                block = {"res": res(cur + skips.pop(), out)}
                if (a := attn(level, out)) is not None:
                    block["attn"] = a
                if level > 0 and i == c.num_res_blocks:
                    block["up"] = Upsample(out)
                self.up.append(nn.ModuleDict(motion(block, out)))
                cur = out
        self.norm_out = group_norm(cur)
        self.conv_out = nn.Conv2d(cur, c.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        if c.channels_last:
            self.to(memory_format=torch.channels_last)

    @property
    def num_classes(self) -> int | None:  # type: ignore[override]
        return self.config.num_classes

    @property
    def pipeline_class(self) -> str | None:
        """``TrajectoryPipeline`` for a trajectory-controlled model, else the task's default."""
        return "TrajectoryPipeline" if self.config.motion_channels is not None else None

    @property
    def accepted_conditions(self) -> frozenset[str]:  # type: ignore[override]
        """``frame_groups`` always; ``context`` with cross-attention, ``class_labels``,
        ``frame_mask`` and ``fps`` as configured."""
        c = self.config
        names = {"frame_groups"}
        names |= {"context"} if c.context_dim is not None else set()
        names |= {"class_labels"} if c.num_classes is not None else set()
        names |= {"frame_mask"} if c.mask_channel else set()
        names |= {"fps"} if c.fps_conditioning else set()
        names |= {"content"} if c.content_channels is not None else set()
        names |= {"motion"} if c.motion_channels is not None else set()
        return frozenset(names)

    # -- helpers ---------------------------------------------------------------------------
    def _motion(self, motion: Tensor, shape: torch.Size) -> Tensor:
        """The trajectory extractor's feature ``(B*F, C, H, W)`` of motion latents on the input
        grid of ``x`` ``shape``."""
        (f,) = extract_motion(self.motion_extractor, motion, self.config.motion_channels,
                              tuple(shape), self.conv_in.weight.dtype)
        return rearrange(f, "b f (h w) d -> (b f) d h w", h=shape[3])

    def _content(self, content: Tensor | None, x: Tensor) -> Tensor:
        """The ``content`` condition ``(B, C_c, H, W)`` (or per frame ``(B, C_c, F, H, W)``)
        broadcast over the frames of ``x`` ``(B, C, F, H, W)``."""
        B, _, F_, H, W = x.shape
        want = self.config.content_channels
        if content is None:
            raise ValueError(f"this model is conditioned on content: pass content=(B, {want}, "
                             f"{H}, {W}) (the MCD-VAE's first-frame features)")
        if content.ndim == 4:
            content = content[:, :, None]
        if content.shape[0] != B or content.shape[1] != want or content.shape[3:] != (H, W):
            raise ValueError(f"content must be (B, {want}, {H}, {W}) for this input, got "
                             f"{tuple(content.shape)}")
        return content.to(x.dtype).expand(B, want, F_, H, W)

    def _block(self, block: nn.ModuleDict, h: Tensor, emb: Tensor, ctx: Tensor | None,
               F_: int, groups: Tensor | None, motion: Tensor | None = None) -> Tensor:
        if "down" in block:
            return block["down"](h)
        h = block["res"](h, emb, F_, groups)
        if "attn" in block:
            for m in block["attn"]:
                h = m(h, ctx) if isinstance(m, SpatialAttention) else m(h, F_, groups)
            if "motion" in block and motion is not None:  # Tora's fuser after the temporal one
                h = self._fuse(block["motion"], h, motion, F_)
        if "up" in block:
            h = block["up"](h)
        return h

    @staticmethod
    def _fuse(fuser: MotionFuser, h: Tensor, motion: Tensor, F_: int) -> Tensor:
        """Fuse the extractor's feature ``motion`` ``(B*F, D, H0, W0)``, average-pooled to the
        resolution of ``h`` ``(B*F, C, H, W)``."""
        H, W = h.shape[2:]
        f = F.adaptive_avg_pool2d(motion, (H, W))
        tok = lambda t: rearrange(t, "(b f) c h w -> b f (h w) c", f=F_)  # noqa: E731
        out = fuser(tok(h), tok(f), (H, W))
        return rearrange(out, "b f (h w) c -> (b f) c h w", h=H)

    def _run(self, block, h, emb, ctx, F_, groups, motion=None):
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(self._block, block, h, emb, ctx, F_, groups, motion,
                              use_reentrant=False)
        return self._block(block, h, emb, ctx, F_, groups, motion)

    def forward(self, x: Tensor, t: Tensor, *, context: Tensor | None = None,
                class_labels: Tensor | None = None, frame_mask: Tensor | None = None,
                frame_groups: Tensor | None = None, fps: Tensor | None = None,
                content: Tensor | None = None, motion: Tensor | None = None) -> Tensor:
        c = self.config
        is_image = x.ndim == 4
        if is_image:
            x = x[:, :, None]
        if x.ndim != 5:
            raise ValueError(f"UNet3D takes (B, C, F, H, W) or (B, C, H, W), got {tuple(x.shape)}")
        B, C, F_, H, W = x.shape
        down = 2 ** (len(c.channel_mult) - 1)
        if H % down or W % down:
            raise ValueError(f"H and W must be divisible by {down}, got {H}x{W}")
        if c.mask_channel:
            m = torch.zeros(B, F_, dtype=x.dtype, device=x.device) if frame_mask is None \
                else frame_mask.to(x.dtype)
            x = torch.cat([x, m[:, None, :, None, None].expand(B, 1, F_, H, W)], dim=1)
        if c.content_channels is not None:
            x = torch.cat([x, self._content(content, x)], dim=1)
        # per-frame embedding (B*F, D)
        t = t.to(x.device).float()
        t = t.reshape(B, 1).expand(B, F_) if t.ndim == 1 else t
        emb = self.time_embed(t)
        if self.fps_embed is not None:
            if fps is None:
                raise ValueError("this model is fps-conditioned: pass fps=(B,)")
            emb = emb + self.fps_embed(fps.float().reshape(B, 1)).expand(B, F_, -1)
        ctx = context
        if self.class_embed is not None and class_labels is not None:
            e = self.class_embed(class_labels.long().to(x.device))
            if c.class_embedding == "add":
                emb = emb + e[:, None]
            else:
                ctx = e[:, None] if ctx is None else torch.cat([ctx, e[:, None]], dim=1)
        emb = emb.reshape(B * F_, -1)
        if ctx is not None:
            ctx = ctx.repeat_interleave(F_, dim=0)  # one copy per frame
        h = rearrange(x, "b c f h w -> (b f) c h w")
        if c.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        h = self.conv_in(h)
        mf = self._motion(motion, x.shape) if motion is not None else None
        hs = [h]
        for block in self.down:
            h = self._run(block, h, emb, ctx, F_, frame_groups, mf)
            hs.append(h)
        for block in self.mid:
            h = self._run(block, h, emb, ctx, F_, frame_groups, mf)
        for block in self.up:
            h = self._run(block, torch.cat([h, hs.pop()], dim=1), emb, ctx, F_, frame_groups,
                          mf)
        h = self.conv_out(F.silu(self.norm_out(h)))
        out = rearrange(h, "(b f) c h w -> b c f h w", b=B)
        return out[:, :, 0] if is_image else out
