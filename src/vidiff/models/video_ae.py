"""LVDM's 3D video autoencoder: ``z = E(x)`` with ``x`` ``(B, 3, L, H, W)`` and ``z``
``(B, c, L / f_t, H / f_s, W / f_s)``.

* Every 3D convolution pads by *replicating* edge frames/pixels (LVDM), and every normalisation
  is per frame, so the encoder is temporally shift-equivariant: shifting the input by ``f_t``
  frames shifts the latent by one frame (away from the ends).
* KL (VAE) or plain bottleneck; a latent scale factor measured on data is kept in the config.
* :meth:`encode_chunked` / :meth:`decode_chunked` process long videos window by window with the
  overlap the temporal receptive field needs, so memory stays bounded for any length and the
  result equals whole-clip coding within float tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ..nn import group_norm
from ..ranges import ranged
from .autoencoder import ScaledLatents, posterior_mode
from .modeling import ModelMixin

__all__ = ["VideoAutoencoderConfig", "VideoAutoencoder", "DiagonalGaussian"]


@dataclass
class VideoAutoencoderConfig:
    in_channels: int = ranged(3, ">= 1")
    base_channels: int = ranged(32, ">= 1")
    #: channel multiplier per level; there are ``len(channel_mult) - 1`` downsamplings
    channel_mult: tuple[int, ...] = ranged((1, 2, 4), ">= 1")
    num_res_blocks: int = ranged(1, ">= 1")
    latent_channels: int = ranged(4, ">= 1")
    #: spatial and temporal compression; powers of two, f_s <= 2 ** (levels - 1)
    spatial_factor: int = ranged(4, ">= 1")
    temporal_factor: int = ranged(4, ">= 1")
    #: "kl" (VAE, sampled latents) or "plain" (deterministic)
    bottleneck: str = "kl"
    #: multiply latents by this before diffusion (1 / std measured on data)
    scale_factor: float = ranged(1.0, "> 0")
    #: space-to-depth of ``p x p`` pixels before the first conv (and depth-to-space after the
    #: last): part of ``spatial_factor``, and it takes the costly full-resolution convs away
    patch_size: int = ranged(1, ">= 1")
    #: temporal kernel of every conv: 3 (3D video autoencoder) or 1 (a per-frame 2D
    #: autoencoder, the baseline LVDM compares with; then temporal_factor must be 1)
    temporal_kernel: int = ranged(3, "[1, 3]")
    #: channels of a full-resolution output stage after the depth-to-space (0 = none): a
    #: residual refinement of the decoded frames by 1x3x3 convs, given the decoder's last
    #: features; it sharpens the edges a ``p x p`` depth-to-space blurs (zero at init, so a
    #: checkpoint without it loads and decodes unchanged)
    output_stage: int = ranged(0, ">= 0")
    extra: dict = field(default_factory=dict)


class FrameNorm(nn.Module):
    """GroupNorm applied to each frame of ``(B, C, F, H, W)`` separately (no mixing over time)."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = group_norm(ch)

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        y = self.norm(rearrange(x, "b c f h w -> (b f) c h w"))
        return rearrange(y, "(b f) c h w -> b c f h w", b=B)


def conv3d(cin: int, cout: int, k: int = 3, stride: tuple[int, int, int] = (1, 1, 1),
           kt: int | None = None) -> nn.Conv3d:
    """``kt x k x k`` 3D convolution (``kt`` defaults to ``k``) with replicate padding (LVDM)."""
    kt = k if kt is None else kt
    return nn.Conv3d(cin, cout, (kt, k, k), stride=stride, padding=(kt // 2, k // 2, k // 2),
                     padding_mode="replicate")


class ResBlock3D(nn.Module):
    def __init__(self, cin: int, cout: int, kt: int = 3):
        super().__init__()
        self.n1, self.c1 = FrameNorm(cin), conv3d(cin, cout, kt=kt)
        self.n2, self.c2 = FrameNorm(cout), conv3d(cout, cout, kt=kt)
        self.skip = nn.Identity() if cin == cout else nn.Conv3d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.c1(F.silu(self.n1(x)))
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class DiagonalGaussian:
    """``N(mean, exp(logvar))`` per latent element, from ``(B, 2c, ...)`` moments."""

    def __init__(self, moments: Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30, 20)
        self.std = torch.exp(0.5 * self.logvar)

    def mode(self) -> Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        e = torch.randn(self.mean.shape, generator=generator, device=self.mean.device,
                        dtype=self.mean.dtype)
        return self.mean + self.std * e

    def kl_per_element(self) -> Tensor:
        """KL to N(0, 1) of each latent element, shaped like :meth:`mode`:
        ``0.5 (mu^2 + sigma^2 - 1 - log sigma^2)`` nats (0 where the posterior is N(0, 1))."""
        return 0.5 * (self.mean ** 2 + self.logvar.exp() - 1 - self.logvar)

    def kl(self) -> Tensor:
        """KL to N(0, I), summed over latent elements, mean over the batch."""
        return self.kl_per_element().flatten(1).sum(1).mean()


def _factors(cfg: VideoAutoencoderConfig) -> tuple[list[int], list[int]]:
    """Per-downsampling (temporal, spatial) strides, temporal ones first (the spatial factor
    left after the ``patch_size`` space-to-depth)."""
    n = len(cfg.channel_mult) - 1
    if cfg.patch_size < 1 or cfg.spatial_factor % cfg.patch_size:
        raise ValueError(f"patch_size {cfg.patch_size} must divide spatial_factor "
                         f"{cfg.spatial_factor}")
    if cfg.temporal_kernel not in (1, 3):
        raise ValueError("temporal_kernel must be 3 (3D) or 1 (per-frame 2D)")
    if cfg.temporal_kernel == 1 and cfg.temporal_factor != 1:
        raise ValueError("a per-frame autoencoder (temporal_kernel 1) has temporal_factor 1")
    fs = cfg.spatial_factor // cfg.patch_size
    ns, nt = int(math.log2(fs)), int(math.log2(cfg.temporal_factor))
    if 2 ** ns != fs or 2 ** nt != cfg.temporal_factor:
        raise ValueError("spatial_factor / patch_size and temporal_factor must be powers of two")
    if ns > n or nt > n:
        raise ValueError(f"{n} downsamplings cannot reach f_s={cfg.spatial_factor} (patch "
                         f"{cfg.patch_size}), f_t={cfg.temporal_factor}; add levels to "
                         "channel_mult")
    return [2 if i < nt else 1 for i in range(n)], [2 if i < ns else 1 for i in range(n)]


class VideoAutoencoder(ScaledLatents, ModelMixin):
    """LVDM's 3D video autoencoder, an :class:`~vidiff.models.autoencoder.Autoencoder`:
    ``encode(x) -> DiagonalGaussian | Tensor``, ``decode(z) -> x``, ``forward(x) -> (x_rec,
    posterior)``. ``x`` in ``[-1, 1]``, ``L`` divisible by ``f_t`` and ``H, W`` by ``f_s``."""

    config_class = VideoAutoencoderConfig

    def __init__(self, config: VideoAutoencoderConfig):
        super().__init__()
        self.config = c = config
        if c.bottleneck not in ("kl", "plain"):
            raise ValueError("bottleneck must be 'kl' or 'plain'")
        ts, ss = _factors(c)
        kt, p2 = c.temporal_kernel, c.patch_size ** 2
        chs = [c.base_channels * m for m in c.channel_mult]
        # encoder
        self.enc_in = conv3d(c.in_channels * p2, chs[0], kt=kt)
        enc: list[nn.Module] = []
        cur = chs[0]
        for i, ch in enumerate(chs):
            for _ in range(c.num_res_blocks):
                enc.append(ResBlock3D(cur, ch, kt))
                cur = ch
            if i < len(chs) - 1:
                enc.append(conv3d(cur, cur, 3, stride=(ts[i], ss[i], ss[i]), kt=kt))
        self.encoder = nn.Sequential(*enc, ResBlock3D(cur, cur, kt), FrameNorm(cur), nn.SiLU())
        zc = c.latent_channels * (2 if c.bottleneck == "kl" else 1)
        self.enc_out = conv3d(cur, zc, kt=kt)
        # decoder (mirror)
        self.dec_in = conv3d(c.latent_channels, cur, kt=kt)
        dec: list[nn.Module] = [ResBlock3D(cur, cur, kt)]
        for i in reversed(range(len(chs))):
            for _ in range(c.num_res_blocks):
                dec.append(ResBlock3D(cur, chs[i], kt))
                cur = chs[i]
            if i > 0:
                dec.append(_Upsample3D(cur, ts[i - 1], ss[i - 1], kt))
        self.decoder = nn.Sequential(*dec, FrameNorm(cur), nn.SiLU())
        self.dec_out = conv3d(cur, c.in_channels * p2, kt=kt)
        self.out_stage = _OutputStage(cur, c.in_channels, c.output_stage, c.patch_size) \
            if c.output_stage else None

    def encoder_modules(self) -> list[nn.Module]:
        """The modules that map a clip to its posterior (what ``freeze_encoder`` freezes)."""
        return [self.enc_in, self.encoder, self.enc_out]

    def last_decoder_layer(self) -> Tensor:
        """The weight of the last decoder conv (VQGAN's adaptive GAN weight is measured there)."""
        return self.dec_out.weight

    @property
    def factors(self) -> tuple[int, int]:
        return self.config.temporal_factor, self.config.spatial_factor

    def _check(self, x: Tensor) -> None:
        ft, fs = self.factors
        if x.ndim != 5:
            raise ValueError(f"expected a video (B, C, F, H, W), got {tuple(x.shape)}")
        if x.shape[2] % ft or x.shape[3] % fs or x.shape[4] % fs:
            raise ValueError(f"frames ({x.shape[2]}) must be divisible by f_t={ft} and H, W "
                             f"({x.shape[3]}x{x.shape[4]}) by f_s={fs}")

    def encode(self, x: Tensor) -> DiagonalGaussian | Tensor:
        self._check(x)
        p = self.config.patch_size
        if p > 1:
            x = rearrange(x, "b c f (h p) (w q) -> b (c p q) f h w", p=p, q=p)
        m = self.enc_out(self.encoder(self.enc_in(x)))
        return DiagonalGaussian(m) if self.config.bottleneck == "kl" else m

    def decode(self, z: Tensor) -> Tensor:
        h = self.decoder(self.dec_in(z))
        x = _depth_to_space(self.dec_out(h), self.config.patch_size)
        return x if self.out_stage is None else self.out_stage(x, h)

    def forward(self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
                ) -> tuple[Tensor, DiagonalGaussian | None]:
        post = self.encode(x)
        if isinstance(post, DiagonalGaussian):
            z = post.sample(generator) if sample else post.mean
            return self.decode(z), post
        return self.decode(post), None

    # -- chunked coding --------------------------------------------------------------------
    def temporal_receptive_field(self) -> int:
        """Latent frames of context each side that make chunked coding match whole-clip coding
        (each stride-1 3-tap conv adds one frame at its own rate; we count it in latent
        frames, rounded up, plus one for safety)."""
        ft = self.config.temporal_factor
        frames = 0.0  # in input frames
        rate = 1
        for mod in [self.enc_in, *self.encoder.modules(), self.enc_out]:
            if isinstance(mod, nn.Conv3d) and mod.kernel_size[0] > 1:
                frames += rate * (mod.kernel_size[0] // 2)
                rate *= mod.stride[0]
        return int(math.ceil(frames / ft)) + 1

    @torch.no_grad()
    def encode_chunked(self, x: Tensor, chunk: int = 4, overlap: int | None = None) -> Tensor:
        """Posterior-mean latents of a long video, ``chunk`` latent frames at a time with
        ``overlap`` latent frames of context each side (default: the receptive field)."""
        ft = self.config.temporal_factor
        self._check(x)
        ov = self.temporal_receptive_field() if overlap is None else overlap
        L = x.shape[2] // ft
        outs = []
        for s in range(0, L, chunk):
            e = min(L, s + chunk)
            a, b = max(0, s - ov), min(L, e + ov)
            z = posterior_mode(self.encode(x[:, :, a * ft:b * ft]))
            outs.append(z[:, :, s - a:s - a + (e - s)])
        return torch.cat(outs, dim=2)

    @torch.no_grad()
    def decode_chunked(self, z: Tensor, chunk: int = 4, overlap: int | None = None):
        """Yield decoded frames ``(B, C, chunk * f_t, H, W)`` window by window (so a caller can
        stream them to a file); concatenated they equal :meth:`decode` within tolerance."""
        ft = self.config.temporal_factor
        ov = self.temporal_receptive_field() if overlap is None else overlap
        L = z.shape[2]
        for s in range(0, L, chunk):
            e = min(L, s + chunk)
            a, b = max(0, s - ov), min(L, e + ov)
            x = self.decode(z[:, :, a:b])
            yield x[:, :, (s - a) * ft:(e - a) * ft]


def _depth_to_space(x: Tensor, p: int) -> Tensor:
    """``(B, C p p, F, H, W) -> (B, C, F, H p, W p)``."""
    return x if p == 1 else rearrange(x, "b (c p q) f h w -> b c f (h p) (w q)", p=p, q=p)


class _OutputStage(nn.Module):
    """Full-resolution residual refinement: ``x + R([x, d2s(proj(h))])`` with 1x3x3 convs,
    where ``x`` ``(B, C, F, H, W)`` are the decoded frames and ``h`` ``(B, D, F, H/p, W/p)`` the
    decoder's last features (projected to ``8 p^2`` channels, then depth-to-space). The last
    conv is zero-initialised, so the stage starts as the identity."""

    def __init__(self, feat_ch: int, out_ch: int, ch: int, p: int, guide_ch: int = 8):
        super().__init__()
        self.p = p
        self.proj = nn.Conv3d(feat_ch, guide_ch * p * p, 1)
        self.conv_in = conv3d(out_ch + guide_ch, ch, kt=1)
        self.block = ResBlock3D(ch, ch, kt=1)
        self.norm = FrameNorm(ch)
        self.conv_out = conv3d(ch, out_ch, kt=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        g = _depth_to_space(self.proj(h), self.p)
        r = self.block(self.conv_in(torch.cat([x, g], dim=1)))
        return x + self.conv_out(F.silu(self.norm(r)))


class _Upsample3D(nn.Module):
    """Nearest-neighbour upsampling by ``(t, s, s)`` then a replicate-padded 3D conv."""

    def __init__(self, ch: int, t: int, s: int, kt: int = 3):
        super().__init__()
        self.t, self.s = t, s
        self.conv = conv3d(ch, ch, kt=kt)

    def forward(self, x: Tensor) -> Tensor:
        if self.t > 1 or self.s > 1:
            x = F.interpolate(x, scale_factor=(self.t, self.s, self.s), mode="nearest")
        return self.conv(x)
