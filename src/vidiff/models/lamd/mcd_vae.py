"""LaMD's motion-content decomposed video autoencoder (MCD-VAE; Hu, Chen & Luo 2023, Sec. 3.1).

A clip ``x`` ``(B, 3, L, H, W)`` in ``[-1, 1]`` is its first frame (content) plus a motion latent
with **no time axis**:

* **image encoder** ``E_I`` (2D, on ``x[:, :, 0]``): multiscale content features
  ``f^1..f^k`` (full resolution down to ``H / f_s``); the deepest, ``f^k``, is the content
  latent ``f_{x0}`` the motion generator is conditioned on;
* **motion encoder** ``E_M`` (3D CNN over the whole clip, after a ``p x p`` space-to-depth):
  temporal factor ``f_t = L`` and spatial factor ``f_s``, so the motion latent is
  ``z_m`` ``(B, d, H / f_s, W / f_s)``. Its posterior is a diagonal Gaussian whose KL to
  ``N(0, I)`` (weight β, the information bottleneck) squeezes content out of it; diffusion runs on
  ``z_m`` normalised to unit variance by :attr:`scale_factor` (measured on data);
* **fusion decoder** ``D_V`` (3D U-Net): ``z_m`` fused with ``f^k``, grown in time to ``L``
  frames by temporally upsampling 3D blocks at ``H / f_s``, then in space level by level with
  each ``f^i`` through a skip, down to full resolution. Each skip is ``f^i`` broadcast over the
  frames and, with ``warp_skips``, also ``f^i`` warped to every frame by a backward flow the
  decoder predicts from its features at ``H / f_s`` (zero at init): content can be carried
  along the motion rather than redrawn (our choice; the paper does not say how its skips cross
  time).

The decoder sees the first frame only through ``E_I`` (a swap test holds this). The model is an
:class:`~vidiff.models.autoencoder.Autoencoder` whose ``decode`` needs the first frame:
``decode(z_m, image)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ...ranges import ranged
from ..autoencoder import ScaledLatents
from ..modeling import ModelMixin
from ..video_ae import DiagonalGaussian, FrameNorm, ResBlock3D, conv3d

__all__ = ["MCDVAEConfig", "MCDVAE"]


@dataclass
class MCDVAEConfig:
    in_channels: int = ranged(3, ">= 1")
    #: clip length ``L`` (= the temporal factor: the motion latent has no time axis)
    num_frames: int = ranged(16, ">= 2")
    #: spatial factor ``f_s`` of the motion latent and of the deepest content feature
    spatial_factor: int = ranged(4, ">= 1")
    #: motion latent channels ``d``
    motion_channels: int = ranged(4, ">= 1")
    #: image encoder / spatial decoder widths, one per level from full resolution down to
    #: ``H / f_s``: ``len(channel_mult) - 1 == log2(f_s)``
    base_channels: int = ranged(16, ">= 1")
    channel_mult: tuple[int, ...] = ranged((1, 2, 4), ">= 1")
    #: motion encoder width (after a ``f_s x f_s`` space-to-depth) and decoder width at ``H / f_s``
    motion_width: int = ranged(64, ">= 1")
    #: 3D residual blocks of the motion encoder and of the decoder at ``H / f_s`` per time level
    num_res_blocks: int = ranged(1, ">= 1")
    #: add to each content skip the features warped to every frame by a flow the decoder
    #: predicts (at ``H / f_s``, zero at init): content can then move with the motion instead
    #: of being redrawn from ``z_m``
    warp_skips: bool = True
    #: training only: the probability that a clip's motion-encoder input has its colour
    #: channels permuted and scaled by random gains in [0.5, 1] (the decoder still reconstructs
    #: the true clip from the first frame), so ``z_m`` cannot carry colour (our addition)
    motion_jitter: float = ranged(0.0, "[0, 1]")
    #: multiply ``z_m`` by this before diffusion (1 / std measured on data)
    scale_factor: float = ranged(1.0, "> 0")
    extra: dict = field(default_factory=dict)


def _time_levels(L: int) -> int:
    """Stride-2 temporal steps of the motion encoder (and upsamplings of the decoder): halve
    while the length stays even and above 4; the rest is folded into channels."""
    n = 0
    while L % 2 == 0 and L > 4:
        L //= 2
        n += 1
    return n


class _ImageEncoder(nn.Module):
    """``E_I``: first frame ``(B, C, 1, H, W)`` -> features ``[f^1 .. f^k]`` (per-frame 2D)."""

    def __init__(self, cin: int, chs: list[int]):
        super().__init__()
        self.conv_in = conv3d(cin, chs[0], kt=1)
        self.levels = nn.ModuleList()
        cur = chs[0]
        for i, ch in enumerate(chs):
            down = conv3d(cur, cur, 3, stride=(1, 2, 2), kt=1) if i else nn.Identity()
            self.levels.append(nn.Sequential(down, ResBlock3D(cur, ch, kt=1)))
            cur = ch

    def forward(self, img: Tensor) -> list[Tensor]:
        h, feats = self.conv_in(img), []
        for level in self.levels:
            h = level(h)
            feats.append(h)
        return feats


class _MotionEncoder(nn.Module):
    """``E_M``: clip and its difference to frame 0 ``(B, 2C, L, H, W)`` -> moments
    ``(B, 2d, H / f_s, W / f_s)``."""

    def __init__(self, c: MCDVAEConfig):
        super().__init__()
        p, w, L = c.spatial_factor, c.motion_width, c.num_frames
        self.p = p
        self.conv_in = conv3d(2 * c.in_channels * p * p, w)
        mods: list[nn.Module] = []
        for _ in range(_time_levels(L)):
            mods += [ResBlock3D(w, w) for _ in range(c.num_res_blocks)]
            mods.append(conv3d(w, w, 3, stride=(2, 1, 1)))
        mods += [ResBlock3D(w, w), FrameNorm(w), nn.SiLU()]
        self.body = nn.Sequential(*mods)
        self.rest = L >> _time_levels(L)  # frames folded into channels at the end
        self.out = nn.Conv2d(w * self.rest, 2 * c.motion_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat([x, x - x[:, :, :1]], dim=1)
        x = rearrange(x, "b c f (h p) (w q) -> b (c p q) f h w", p=self.p, q=self.p)
        h = self.body(self.conv_in(x))
        return self.out(rearrange(h, "b c f h w -> b (c f) h w"))


class _FusionDecoder(nn.Module):
    """``D_V``: ``z_m`` + content features -> the clip ``(B, C, L, H, W)``."""

    def __init__(self, c: MCDVAEConfig, chs: list[int]):
        super().__init__()
        w, L = c.motion_width, c.num_frames
        self.rest = L >> _time_levels(L)
        self.fuse = nn.Conv2d(c.motion_channels + chs[-1], w, 3, padding=1)
        self.unfold = nn.Conv2d(w, w * self.rest, 1)  # the inverse of the encoder's fold
        mods: list[nn.Module] = [ResBlock3D(w, w)]
        for _ in range(_time_levels(L)):
            mods += [_TemporalUpsample(w)] + [ResBlock3D(w, w) for _ in range(c.num_res_blocks)]
        self.temporal = nn.Sequential(*mods)
        # spatial levels from H / f_s up to full resolution, each with its content skip
        k = 2 if c.warp_skips else 1  # broadcast (+ warped) copies of each skip
        self.skip_in = ResBlock3D(w + k * chs[-1], chs[-1], kt=1)
        self.ups = nn.ModuleList()
        cur = chs[-1]
        for ch in reversed(chs[:-1]):
            self.ups.append(nn.ModuleDict({"conv": conv3d(cur, ch, kt=1),
                                           "block": ResBlock3D((1 + k) * ch, ch, kt=1)}))
            cur = ch
        self.norm_out = FrameNorm(cur)
        self.conv_out = conv3d(cur, c.in_channels, kt=1)
        self.flow = None
        if c.warp_skips:  # per-frame backward flow, in units of the H / f_s grid
            self.flow = conv3d(w, 2, kt=1)
            nn.init.zeros_(self.flow.weight)
            nn.init.zeros_(self.flow.bias)

    def _skip(self, f: Tensor, flow: Tensor | None, L: int) -> Tensor:
        """The content feature ``f`` ``(B, C, 1, H, W)`` for every frame: broadcast, and (with
        a flow) sampled at ``x + flow_t(x)`` (bilinear; ``flow`` ``(B, 2, L, h, w)`` in grid
        cells of ``h``), concatenated."""
        broadcast = f.expand(-1, -1, L, -1, -1)
        if flow is None:
            return broadcast
        B, C, _, H, W = f.shape
        h, w = flow.shape[3:]
        fl = F.interpolate(rearrange(flow, "b c l y x -> (b l) c y x"), size=(H, W),
                           mode="bilinear", align_corners=False)
        ys = (torch.arange(H, device=f.device, dtype=fl.dtype) + 0.5) / H * 2 - 1
        xs = (torch.arange(W, device=f.device, dtype=fl.dtype) + 0.5) / W * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx + fl[:, 0] * 2 / w, gy + fl[:, 1] * 2 / h], dim=-1)
        src = f[:, :, 0].repeat_interleave(L, dim=0)
        out = F.grid_sample(src, grid.to(src.dtype), mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return torch.cat([broadcast, rearrange(out, "(b l) c y x -> b c l y x", b=B)], dim=1)

    def forward(self, z: Tensor, feats: list[Tensor]) -> Tensor:
        deep = feats[-1][:, :, 0]
        h = self.unfold(F.silu(self.fuse(torch.cat([z, deep], dim=1))))
        h = self.temporal(rearrange(h, "b (c f) h w -> b c f h w", f=self.rest))
        L = h.shape[2]
        flow = None
        if self.flow is not None:  # bounded to the grid (a wild flow head cannot scatter it)
            size = torch.tensor(h.shape[-1:-3:-1], dtype=h.dtype, device=h.device)  # (w, h)
            size = size.reshape(1, 2, 1, 1, 1)
            flow = size * torch.tanh(self.flow(h) / size)
        h = self.skip_in(torch.cat([h, self._skip(feats[-1], flow, L)], dim=1))
        for up, f in zip(self.ups, reversed(feats[:-1])):
            h = up["conv"](F.interpolate(h, scale_factor=(1, 2, 2), mode="nearest"))
            h = up["block"](torch.cat([h, self._skip(f, flow, L)], dim=1))
        return self.conv_out(F.silu(self.norm_out(h)))


class _TemporalUpsample(nn.Module):
    """Nearest-neighbour doubling of the frames, then a 3D conv."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = conv3d(ch, ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=(2, 1, 1), mode="nearest"))


class MCDVAE(ScaledLatents, ModelMixin):
    """LaMD's MCD-VAE (see the module docstring).

    * ``encode(x)`` -> :class:`~vidiff.models.video_ae.DiagonalGaussian` over ``z_m``
      ``(B, d, H / f_s, W / f_s)``; ``x`` ``(B, C, L, H, W)`` in ``[-1, 1]``, ``H, W`` divisible
      by ``f_s``, exactly ``L`` frames;
    * ``content_features(image)`` -> ``[f^1 .. f^k]``, ``f^i`` ``(B, C_i, 1, H / 2^(i-1), ...)``;
      ``content(image)`` -> ``f^k[:, :, 0]`` ``(B, C_k, H / f_s, W / f_s)`` (what the motion
      generator is conditioned on); ``image`` ``(B, C, H, W)`` in ``[-1, 1]``;
    * ``decode(z_m, image)`` -> ``(B, C, L, H, W)``; ``forward(x)`` -> ``(reconstruction,
      posterior)`` with ``image = x[:, :, 0]``; ``latents(x)`` -> ``z_m`` (the posterior mean)
      times :attr:`scale_factor`.

    Raises:
        ValueError: a clip of another length, sizes not divisible by ``f_s``, ``decode`` without
            the first frame, or a config whose levels do not reach ``f_s``.
    """

    config_class = MCDVAEConfig
    #: the pipeline a motion generator trained on these latents samples with
    latent_pipeline = "ImageToVideoPipeline"

    def __init__(self, config: MCDVAEConfig):
        super().__init__()
        self.config = c = config
        levels = len(c.channel_mult) - 1
        if 2 ** levels != c.spatial_factor:
            raise ValueError(f"MCDVAE: channel_mult has {levels + 1} levels, so the content "
                             f"features reach H / {2 ** levels}; spatial_factor must equal that "
                             f"(got {c.spatial_factor})")
        chs = [c.base_channels * m for m in c.channel_mult]
        self.image_encoder = _ImageEncoder(c.in_channels, chs)
        self.motion_encoder = _MotionEncoder(c)
        self.decoder = _FusionDecoder(c, chs)

    # -- the Autoencoder protocol -----------------------------------------------------------
    @property
    def factors(self) -> tuple[int, int]:
        """``(f_t, f_s)``: ``f_t`` is the clip length (no time axis in ``z_m``)."""
        return self.config.num_frames, self.config.spatial_factor

    def encoder_modules(self) -> list[nn.Module]:
        """What defines the latent space: the motion encoder and the image encoder (whose
        content features the motion generator is conditioned on)."""
        return [self.motion_encoder, self.image_encoder]

    def last_decoder_layer(self) -> Tensor:
        return self.decoder.conv_out.weight

    def temporal_receptive_field(self) -> int:
        """0: clips are coded as independent ``L``-frame windows."""
        return 0

    def _check(self, x: Tensor) -> None:
        L, fs = self.factors
        if x.ndim != 5:
            raise ValueError(f"MCDVAE takes a clip (B, C, F, H, W), got {tuple(x.shape)}")
        if x.shape[2] != L or x.shape[3] % fs or x.shape[4] % fs:
            raise ValueError(f"MCDVAE codes clips of exactly {L} frames with H, W divisible by "
                             f"{fs}; got {x.shape[2]} frames of {x.shape[3]}x{x.shape[4]}")

    def encode(self, x: Tensor) -> DiagonalGaussian:
        self._check(x)
        return DiagonalGaussian(self.motion_encoder(x))

    def content_features(self, image: Tensor) -> list[Tensor]:
        if image.ndim != 4 or image.shape[2] % self.config.spatial_factor \
                or image.shape[3] % self.config.spatial_factor:
            raise ValueError(f"MCDVAE: the first frame must be (B, C, H, W) with H, W divisible "
                             f"by {self.config.spatial_factor}, got {tuple(image.shape)}")
        return self.image_encoder(image[:, :, None])

    def content(self, image: Tensor) -> Tensor:
        return self.content_features(image)[-1][:, :, 0]

    def clip_conditions(self, x: Tensor) -> dict[str, Tensor]:
        """What a motion generator trained on these latents is conditioned on: ``content``, the
        first frame's deepest features (see :meth:`content`)."""
        return {"content": self.content(x[:, :, 0])}

    def decode(self, z: Tensor, image: Tensor | None = None) -> Tensor:
        if image is None:
            raise ValueError("MCDVAE.decode needs the first frame: decode(z_m, image) with image "
                             "(B, C, H, W) in [-1, 1]")
        if z.ndim == 5 and z.shape[2] == 1:
            z = z[:, :, 0]
        feats = self.content_features(image.to(z.dtype))
        return self.decoder(z, feats)

    def _jitter(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """The clips ``x`` with, for each with probability ``motion_jitter``, the colour channels
        permuted and scaled (in ``[0, 1]`` units, so black stays black)."""
        B, C = x.shape[:2]
        pick = torch.rand(B, generator=generator) < self.config.motion_jitter
        perm = torch.stack([torch.randperm(C, generator=generator) for _ in range(B)])
        gain = 0.5 + 0.5 * torch.rand(B, C, generator=generator)
        perm[~pick], gain[~pick] = torch.arange(C), 1.0
        y = torch.stack([x[b, perm[b]] for b in range(B)])
        g = gain.to(x.device, x.dtype)[:, :, None, None, None]
        return (y + 1) * g - 1

    def forward(self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
                ) -> tuple[Tensor, DiagonalGaussian]:
        """``(reconstruction, posterior)``; in training with ``motion_jitter`` the posterior is
        that of a colour-jittered copy of the clip, the reconstruction's target the clip."""
        jitter = self.training and self.config.motion_jitter > 0
        post = self.encode(self._jitter(x, generator) if jitter else x)
        z = post.sample(generator) if sample else post.mode()
        return self.decode(z, x[:, :, 0]), post

    # -- long clips: independent windows ----------------------------------------------------
    def _windows(self, x: Tensor) -> int:
        L = self.config.num_frames
        if x.ndim != 5 or x.shape[2] % L:
            raise ValueError(f"MCDVAE codes windows of {L} frames; got {tuple(x.shape)}")
        return x.shape[2] // L

    @torch.no_grad()
    def encode_chunked(self, x: Tensor, chunk: int = 1) -> Tensor:
        """Motion latents of consecutive ``L``-frame windows, ``(B, d, n, h, w)`` (window on the
        time axis), ``chunk`` windows an encoder call."""
        L, n = self.config.num_frames, self._windows(x)
        outs = []
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            win = rearrange(x[:, :, s * L:e * L], "b c (n f) h w -> (b n) c f h w", f=L)
            outs.append(rearrange(self.latents(win, scaled=False), "(b n) d h w -> b d n h w",
                                  n=e - s))
        return torch.cat(outs, dim=2)

    @torch.no_grad()
    def decode_chunked(self, z: Tensor, chunk: int = 1, images: Tensor | None = None
                       ) -> Iterator[Tensor]:
        """Yield each window's frames ``(B, C, L, H, W)``; ``images`` ``(B, C, n, H, W)`` are the
        windows' first frames (the content :meth:`decode` needs)."""
        if images is None or images.shape[2] != z.shape[2]:
            raise ValueError("MCDVAE.decode_chunked needs each window's first frame: images "
                             "(B, C, n, H, W) for latents (B, d, n, h, w)")
        for i in range(z.shape[2]):
            yield self.decode(z[:, :, i], images[:, :, i])

    @torch.no_grad()
    def reconstruct_chunked(self, x: Tensor, chunk: int = 1, z: Tensor | None = None
                            ) -> Iterator[Tensor]:
        """Encode (unless ``z``, its :meth:`encode_chunked`, is given) and decode a clip of
        ``n * L`` frames window by window (each window's content is its own first frame);
        yields ``(B, C, L, H, W)`` per window."""
        L = self.config.num_frames
        z = self.encode_chunked(x, chunk) if z is None else z
        yield from self.decode_chunked(z, chunk, x[:, :, ::L])
