"""The ``Autoencoder`` protocol: what latent diffusion needs of an autoencoder.

Pipelines, long-video generation, latent caches and the autoencoder task speak to an
autoencoder only through this interface, so LVDM's 3D video autoencoder
(:class:`~vidiff.models.video_ae.VideoAutoencoder`) and a two-part one (LaMD's content + motion
VAE, Tora's trajectory VAE) are interchangeable where their latents fit.

Shapes: pixels ``(B, C, F, H, W)`` in ``[-1, 1]``; latents ``(B, c, F / f_t, H / f_s, W / f_s)``
for a video autoencoder (a motion autoencoder may drop the time axis: ``temporal_factor`` is
then the clip length).
"""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["Autoencoder", "Posterior", "posterior_mode", "ScaledLatents"]


@runtime_checkable
class Posterior(Protocol):
    """``q(z | x)``: ``sample(generator)``, ``mode()`` and ``kl()`` to ``N(0, I)`` (summed over the
    latent, mean over the batch), e.g. :class:`~vidiff.models.video_ae.DiagonalGaussian`."""

    def sample(self, generator: torch.Generator | None = None) -> Tensor: ...

    def mode(self) -> Tensor: ...

    def kl(self) -> Tensor: ...


def posterior_mode(post: Posterior | Tensor) -> Tensor:
    """The deterministic latent of an encoding: a posterior's mode, or a plain bottleneck's
    tensor itself."""
    return post if isinstance(post, Tensor) else post.mode()


@runtime_checkable
class Autoencoder(Protocol):
    """What every vidiff autoencoder provides.

    * ``encode(x)`` -> :class:`Posterior` (or a tensor for a deterministic bottleneck);
      ``decode(z)`` -> pixels; ``latents(x, scaled=True)`` -> the posterior mode times
      :attr:`scale_factor` (what diffusion runs on);
    * :attr:`factors` ``(f_t, f_s)`` (temporal, spatial compression) and :attr:`scale_factor`
      (``1 / std`` of latents, measured on data; settable);
    * chunked coding for long videos: ``encode_chunked(x, chunk)`` and a generator
      ``decode_chunked(z, chunk)``, equal to whole-clip coding within float tolerance, with
      ``temporal_receptive_field()`` latent frames of context each side;
    * for training: ``encoder_modules()`` (what ``freeze_encoder`` freezes and what defines the
      latent space) and ``last_decoder_layer()`` (the weight of the GAN's adaptive balance).

    A two-part autoencoder whose decoder needs more than the latent (LaMD's MCD-VAE decodes
    ``z_m`` with the first frame: ``decode(z, image)``) also provides ``clip_conditions(x)``
    (what a latent model trained on it is conditioned on, derived from each clip: the diffusion
    task adds it to the batch) and ``reconstruct_chunked(x)`` (encode and decode a clip, window
    by window: what ``vidiff autoencode`` calls when present).
    """

    @property
    def factors(self) -> tuple[int, int]: ...

    @property
    def scale_factor(self) -> float: ...

    def encode(self, x: Tensor) -> Posterior | Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...

    def latents(self, x: Tensor, scaled: bool = True) -> Tensor: ...

    def encode_chunked(self, x: Tensor, chunk: int = 4) -> Tensor: ...

    def decode_chunked(self, z: Tensor, chunk: int = 4) -> Iterator[Tensor]: ...

    def temporal_receptive_field(self) -> int: ...

    def encoder_modules(self) -> list[nn.Module]: ...

    def last_decoder_layer(self) -> Tensor: ...


class ScaledLatents:
    """What every autoencoder shares about its latents: :attr:`scale_factor` kept in its config
    (``config.scale_factor``, ``1 / std`` measured on data) and :meth:`latents`."""

    config: object

    @property
    def scale_factor(self) -> float:
        """Latents are multiplied by this before diffusion (``config.scale_factor``)."""
        return self.config.scale_factor  # type: ignore[attr-defined]

    @scale_factor.setter
    def scale_factor(self, value: float) -> None:
        self.config.scale_factor = float(value)  # type: ignore[attr-defined]

    def latents(self, x: Tensor, scaled: bool = True) -> Tensor:
        """Deterministic latents (the posterior mean), times :attr:`scale_factor` when
        ``scaled`` (what diffusion runs on)."""
        z = posterior_mode(self.encode(x))  # type: ignore[attr-defined]
        return z * self.scale_factor if scaled else z
