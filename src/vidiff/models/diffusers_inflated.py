"""A diffusers ``UNet2DConditionModel`` inflated into a video denoiser.

The text-to-image U-Net is kept as it is - its blocks, weights and forward code - and vidiff's
temporal layers are inserted after its 2D layers, the way AnimateDiff (Guo et al. 2023; diffusers'
``UNetMotionModel.from_unet2d``) inserts motion modules and Make-A-Video (Singer et al. 2022,
section 3.2) turns convolutions and attention into pseudo-3D ones:

* after every resnet of the down, mid and up blocks, a :class:`~vidiff.nn.TemporalConv`
  (Make-A-Video eq. 3: ``Conv_P3D(h) = Conv1D(Conv2D(h) o T) o T``, the 1D kernel a Dirac delta);
* after every attention (``Transformer2DModel``), and after every resnet of a block without
  attention, a :class:`~vidiff.nn.TemporalAttention` (Make-A-Video eq. 4 / AnimateDiff's motion
  module: one temporal attention per layer of every block), its output projection zero.

Both start as the identity, so at init the video model is the image model applied frame by
frame, and training only the temporal layers (``train.trainable: ["*temporal*"]``, every one of
their parameters has ``temporal`` in its name) leaves the image model bit-identical.

The insertion wraps the resnet / attention modules in place (:class:`_TemporalAfter`: the
diffusers module, then the temporal layers); diffusers' own forward runs unchanged on the
frame-folded batch ``(B*F, C, H, W)``, and the clip length reaches the wrappers through a small
state object shared by all of them, set at the start of every forward.

diffusers is an optional dependency (``pip install vidiff[diffusers]``), imported only when a
model is built.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from ..nn import TemporalAttention, TemporalConv
from ..ranges import ranged
from .modeling import ModelMixin

__all__ = ["InflatedUNet2DConditionConfig", "InflatedUNet2DCondition"]


def _diffusers_unet_class() -> type:
    """diffusers' ``UNet2DConditionModel``; ``ImportError`` (one line) without diffusers."""
    try:
        from diffusers import UNet2DConditionModel
    except ImportError as e:
        raise ImportError("InflatedUNet2DCondition needs diffusers: "
                          f"pip install vidiff[diffusers] ({e})") from None
    return UNet2DConditionModel


@dataclass
class InflatedUNet2DConditionConfig:
    #: the diffusers ``UNet2DConditionModel`` config (``unet.config``, keys without ``_``): what
    #: rebuilds the network from a vidiff checkpoint without the original folder
    unet2d_config: dict = field(default_factory=dict)
    #: a local diffusers folder (``config.json`` + weights) loaded at build with
    #: ``local_files_only=True``; the built model's config then holds its ``unet2d_config``
    #: and no longer names the folder (its weights are the model's own from then on)
    pretrained: str | None = None
    #: a :class:`~vidiff.nn.TemporalConv` after every resnet (Make-A-Video's pseudo-3D conv)
    temporal_conv: bool = True
    temporal_kernel: int = ranged(3, ">= 1")
    #: a :class:`~vidiff.nn.TemporalAttention` after every attention (and every resnet of a
    #: block without attention)
    temporal_attention: bool = True
    #: temporal attention heads are ``width // head_channels`` (at least one)
    head_channels: int = ranged(64, ">= 1")
    max_relative_distance: int = ranged(32, ">= 1")
    #: the clip it generates, in its own (latent) space; filled from the data when training
    sample_size: int | None = ranged(None, ">= 1")
    num_frames: int | None = ranged(None, ">= 1")
    extra: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        """The diffusers U-Net's input channels (what pipelines and tasks read)."""
        return int(self.unet2d_config.get("in_channels", 4))

    @property
    def out_channels(self) -> int:
        return int(self.unet2d_config.get("out_channels", 4))

    @property
    def context_dim(self) -> int | None:
        """The width of the text tokens it cross-attends to (diffusers' ``cross_attention_dim``;
        what the text condition encoder checks its encoder against)."""
        dim = self.unet2d_config.get("cross_attention_dim")
        return int(dim) if isinstance(dim, int) else None


class _FrameState:
    """What the wrappers need of the current call: frames per clip and frame groups."""

    def __init__(self) -> None:
        self.num_frames = 1
        self.frame_groups: Tensor | None = None


def _output_channels(module: nn.Module) -> int:
    """Channels of a diffusers resnet / attention module's output."""
    for attr in ("out_channels", "out_dim"):
        ch = getattr(module, attr, None)
        if isinstance(ch, int):
            return ch
    raise ValueError(f"cannot tell the output channels of {type(module).__name__} "
                     "(no out_channels / out_dim): not a block InflatedUNet2DCondition knows")


class _TemporalAfter(nn.Module):
    """``base`` (a diffusers resnet or attention, unchanged), then a temporal convolution and/or
    temporal attention on its frame-folded output ``(B*F, C, H, W)``.

    ``base`` may return a tensor, a tuple whose first item is the hidden states, or an output
    object with ``.sample``; the same form comes back. A frame alone in its group (an image
    appended for joint training) leaves the temporal layers as it entered them, like an image.
    """

    def __init__(self, base: nn.Module, state: _FrameState, conv_kernel: int | None,
                 attn_heads: int | None, max_distance: int):
        super().__init__()
        ch = _output_channels(base)
        self.base = base
        self.temporal_conv = TemporalConv(ch, conv_kernel) if conv_kernel else None
        self.temporal_attn = TemporalAttention(ch, attn_heads, max_distance) if attn_heads \
            else None
        ref = next(base.parameters(), None)
        for sub in (self.temporal_conv, self.temporal_attn):
            if sub is not None and ref is not None:  # the wrapped module's device and dtype
                sub.to(device=ref.device, dtype=ref.dtype)
        self._state = state

    def temporal(self, h: Tensor) -> Tensor:
        s = self._state
        if self.temporal_conv is not None:
            h = self.temporal_conv(h, s.num_frames, s.frame_groups)
        if self.temporal_attn is not None:
            h = self.temporal_attn(h, s.num_frames, s.frame_groups)
        return h

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.base(*args, **kwargs)
        if isinstance(out, Tensor):
            return self.temporal(out)
        if isinstance(out, tuple):
            return (self.temporal(out[0]), *out[1:])
        out.sample = self.temporal(out.sample)  # a diffusers BaseOutput
        return out


def _blocks(unet: nn.Module) -> list[nn.Module]:
    mid = [unet.mid_block] if getattr(unet, "mid_block", None) is not None else []
    return [*unet.down_blocks, *mid, *unet.up_blocks]


class InflatedUNet2DCondition(ModelMixin):
    """A diffusers ``UNet2DConditionModel`` with vidiff temporal layers: a video denoiser in
    vidiff's convention, ``forward(x, t, *, context=None, frame_groups=None)``.

    Args:
        x: ``(B, C, F, H, W)`` video or ``(B, C, H, W)`` image (one frame: the temporal layers
            are skipped and the output is the diffusers model's); ``C`` the U-Net's
            ``in_channels``.
        t: ``(B,)`` or per-frame ``(B, F)`` diffusion times in ``[0, 1]``; diffusers sees the
            timesteps ``1000 t`` of each frame, ``(B*F,)``.
        context: ``(B, L, cross_attention_dim)`` text tokens, diffusers' ``encoder_hidden_states``
            (repeated for every frame); required when the U-Net cross-attends.
        frame_groups: int ``(B, F)``: temporal layers only mix frames of the same group; a frame
            alone in its group comes out as it would as an image input.
    Returns:
        the prediction shaped like ``x`` with the U-Net's ``out_channels`` channels.
    Raises:
        ValueError: wrong shapes, a missing context, a U-Net needing conditions vidiff does not
            pass (``class_embed_type``, ``addition_embed_type``), or neither ``unet2d_config``
            nor ``pretrained`` given.
        ImportError: diffusers is not installed.
    """

    config_class = InflatedUNet2DConditionConfig
    accepted_conditions = frozenset({"context", "frame_groups"})

    def __init__(self, config: InflatedUNet2DConditionConfig, *, unet: nn.Module | None = None):
        """``unet``: an already built ``UNet2DConditionModel`` to wrap in place (what
        :meth:`from_unet2d` passes, a copy); otherwise it is built from ``config``."""
        super().__init__()
        c = dataclasses.replace(config)
        if unet is None:
            cls = _diffusers_unet_class()
            if c.pretrained is not None:
                unet = cls.from_pretrained(c.pretrained, local_files_only=True)
                c.pretrained = None  # the weights are this model's own from here on
            elif c.unet2d_config:
                unet = cls.from_config(dict(c.unet2d_config))
            else:
                raise ValueError("InflatedUNet2DCondition needs unet2d_config (a diffusers "
                                 "UNet2DConditionModel config) or pretrained (a local folder)")
        c.unet2d_config = _plain_config(unet.config)
        for key in ("class_embed_type", "addition_embed_type"):
            if c.unet2d_config.get(key) is not None:
                raise ValueError(f"InflatedUNet2DCondition: a U-Net with {key}="
                                 f"{c.unet2d_config[key]!r} needs conditions it does not pass")
        self.config = c
        self.unet = unet
        self._frames = _FrameState()
        self._cross = any(getattr(b, "has_cross_attention", False) for b in _blocks(unet))
        self._wrap(unet)

    def _wrap(self, unet: nn.Module) -> None:
        c = self.config
        for block in _blocks(unet):
            attentions = getattr(block, "attentions", None)
            for name in ("resnets", "attentions"):
                mods = getattr(block, name, None) or []
                conv = c.temporal_conv and name == "resnets"
                attn = c.temporal_attention and (name == "attentions" or not attentions)
                for i, m in enumerate(mods):
                    heads = max(1, _output_channels(m) // c.head_channels) if attn else None
                    mods[i] = _TemporalAfter(m, self._frames, c.temporal_kernel if conv else None,
                                             heads, c.max_relative_distance)

    def temporal_modules(self) -> list[nn.Module]:
        """The inserted :class:`~vidiff.nn.TemporalConv` / :class:`~vidiff.nn.TemporalAttention`
        layers, in network order."""
        return [m for m in self.modules() if isinstance(m, (TemporalConv, TemporalAttention))]

    @classmethod
    def from_unet2d(cls, unet: nn.Module, **options: Any) -> "InflatedUNet2DCondition":
        """Inflate an in-memory diffusers ``UNet2DConditionModel`` (a copy of it: ``unet`` is
        left as it is). ``options``: :class:`InflatedUNet2DConditionConfig` fields other than
        ``unet2d_config`` / ``pretrained``."""
        bad = set(options) - {f.name for f in dataclasses.fields(cls.config_class)}
        bad |= set(options) & {"unet2d_config", "pretrained"}
        if bad:
            raise ValueError(f"from_unet2d: unknown or fixed options {sorted(bad)}")
        cfg = cls.config_class(unet2d_config=_plain_config(unet.config), **options)
        return cls(cfg, unet=copy.deepcopy(unet))

    def forward(self, x: Tensor, t: Tensor, *, context: Tensor | None = None,
                frame_groups: Tensor | None = None) -> Tensor:
        is_image = x.ndim == 4
        if is_image:
            x = x[:, :, None]
        if x.ndim != 5:
            raise ValueError("InflatedUNet2DCondition takes (B, C, F, H, W) or (B, C, H, W), "
                             f"got {tuple(x.shape)}")
        B, _, F_, _, _ = x.shape
        t = torch.as_tensor(t, device=x.device).float()
        t = t[:, None].expand(B, F_) if t.shape == (B,) else t
        if t.shape != (B, F_):
            raise ValueError(f"t must be (B,) or (B, F) = ({B}, {F_}), got {tuple(t.shape)}")
        if context is None and self._cross:
            raise ValueError("this U-Net cross-attends: pass context=(B, L, D)")
        if context is not None:
            if context.ndim != 3 or context.shape[0] != B:
                raise ValueError(f"context must be (B={B}, L, D), got {tuple(context.shape)}")
            context = context.repeat_interleave(F_, dim=0)  # one copy per frame
        self._set_frames(B, F_, frame_groups, x.device)
        out = self.unet(rearrange(x, "b c f h w -> (b f) c h w"), t.reshape(B * F_) * 1000.0,
                        encoder_hidden_states=context, return_dict=False)[0]
        out = rearrange(out, "(b f) c h w -> b c f h w", b=B)
        return out[:, :, 0] if is_image else out

    def _set_frames(self, B: int, F_: int, frame_groups: Tensor | None,
                    device: torch.device) -> None:
        """Tell the wrappers the clip length and groups. Kept after the call: gradient
        checkpointing (``unet.enable_gradient_checkpointing()``) re-runs the wrappers in the
        backward pass, which must then come before this model's next forward."""
        s = self._frames
        s.num_frames, s.frame_groups = F_, None
        if frame_groups is not None and F_ > 1:
            if tuple(frame_groups.shape) != (B, F_):
                raise ValueError(f"frame_groups must be (B, F) = ({B}, {F_}), "
                                 f"got {tuple(frame_groups.shape)}")
            s.frame_groups = frame_groups.to(device)


def _plain_config(config: Any) -> dict:
    """A diffusers config as a JSON-able dict, without its ``_`` bookkeeping keys."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(config).items()
            if not k.startswith("_")}

