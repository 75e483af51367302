"""Training LVDM's video autoencoder: L1/MSE reconstruction, an optional perceptual (LPIPS)
term, KL, and a 3D patch discriminator with hinge loss and VQGAN's adaptive weight that starts
after a configurable step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ...models.discriminator import PatchDiscriminator3D
from ...models.modeling import ModelMixin
from ...nn.perceptual import load_perceptual
from ...ranges import ranged
from ...registry import DATASETS, TASKS
from ..checkpoint import optimizer_from_tensors, optimizer_to_tensors
from .base import Task

__all__ = ["AutoencoderLossConfig", "AutoencoderTask", "hinge_d_loss"]

log = logging.getLogger(__name__)


@dataclass
class AutoencoderLossConfig:
    """Losses of a ``task: autoencoder`` run (LVDM's video autoencoder)."""

    #: l1 | mse
    reconstruction: str = "l1"
    #: weight of KL(posterior || N(0, I)) summed over the latent, per pixel of the clip (LDM's
    #: convention, so 1e-6 balances as in LDM / LVDM)
    kl_weight: float = ranged(1e-6, ">= 0")
    #: how the KL enters: "pixel" (summed over the latent, divided by the pixels of a clip: LDM
    #: and LVDM) or "latent" (the mean KL per latent element, β-VAE style: LaMD's information
    #: bottleneck β, comparable across latent sizes)
    kl_reduction: str = "pixel"
    #: LPIPS weight; needs ``perceptual_weights`` (a local .safetensors file), otherwise off
    perceptual_weight: float = ranged(0.0, ">= 0")
    perceptual_weights: str | None = None
    #: 3D patch discriminator (hinge loss, adaptive weight) from step ``disc_start``; 0 = off
    disc_weight: float = ranged(0.0, ">= 0")
    disc_start: int = ranged(2000, ">= 0")
    disc_channels: int = ranged(32, ">= 1")
    disc_layers: int = ranged(2, ">= 1")
    disc_lr: float = ranged(2e-4, "> 0")
    #: batches used to measure the latent scale factor (1 / std) at each checkpoint
    scale_batches: int = ranged(4, ">= 1")
    #: train the decoder only (with ``train.init_from``): the encoder, hence the latent space,
    #: its scale factor and any latent cache or latent diffusion model made from it, stays valid
    freeze_encoder: bool = False


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())


@TASKS.register("autoencoder")
class AutoencoderTask(Task):
    """Reconstruction (+ perceptual + KL + adversarial) loss of an autoencoder (LVDM's video
    autoencoder; any :class:`~vidiff.models.autoencoder.Autoencoder` whose ``forward(x,
    generator=)`` returns ``(reconstruction, posterior)``). It keeps its discriminator and
    optimiser itself and hands their tensors to the checkpoint; at each checkpoint it measures
    the latent scale factor."""

    config_key = "autoencoder_loss"
    config_class = AutoencoderLossConfig

    def __init__(self, cfg, device: torch.device, model: ModelMixin | None = None):
        super().__init__(cfg, device, model)
        model = self.model
        lc: AutoencoderLossConfig = self.settings(cfg)
        self.lc = lc
        if lc.freeze_encoder:
            if not cfg.train.init_from:
                log.warning("freeze_encoder without train.init_from: the encoder stays random")
            for m in model.encoder_modules():
                m.requires_grad_(False)
        self.perceptual = None
        if lc.perceptual_weight > 0:
            self.perceptual = load_perceptual(lc.perceptual_weights)
            if self.perceptual is None:
                log.warning("perceptual loss is OFF: no LPIPS weights file given "
                            "(autoencoder_loss.perceptual_weights)")
            else:
                self.perceptual = self.perceptual.to(device).eval().requires_grad_(False)
        self.disc = None
        if lc.disc_weight > 0:
            self.disc = PatchDiscriminator3D(model.config.in_channels, lc.disc_channels,
                                             lc.disc_layers).to(device)
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=lc.disc_lr,
                                              betas=(0.5, 0.9))
        self._last: tuple[Tensor, Tensor] | None = None
        self._kl: float | None = None  # the last step's KL, for the log

    def _rec_loss(self, x: Tensor, rec: Tensor) -> Tensor:
        if self.lc.reconstruction == "l1":
            loss = (rec - x).abs().mean()
        elif self.lc.reconstruction == "mse":
            loss = F.mse_loss(rec, x)
        else:
            raise ValueError("autoencoder_loss.reconstruction must be l1 or mse")
        if self.perceptual is not None:
            loss = loss + self.lc.perceptual_weight * self.perceptual(rec, x).mean()
        return loss

    def _adaptive_weight(self, rec_loss: Tensor, g_loss: Tensor) -> Tensor:
        """VQGAN's balance: ||grad rec|| / ||grad adv|| at the decoder's last layer."""
        last = self.model.last_decoder_layer()
        gr = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
        ga = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        return (gr.norm() / (ga.norm() + 1e-4)).clamp(0, 1e4).detach()

    def loss(self, net: nn.Module, batch: dict, g: torch.Generator, step: int) -> Tensor:
        x = batch["video"].to(self.device)
        rec, post = net(x, generator=g)
        rec_loss = self._rec_loss(x, rec.float())
        loss = rec_loss
        if post is not None:
            # LDM's balance is KL(sum over latents) against reconstruction summed over pixels;
            # the reconstruction here is a per-pixel mean, so the KL is divided by the pixels of
            # a clip. (Without this, kl_weight 1e-6 is ~2e5 times too strong and the posterior
            # collapses to N(0, I): measured, PSNR 13 dB after 750 steps.)
            kl = post.kl()
            if self.lc.kl_reduction == "pixel":
                loss = loss + self.lc.kl_weight * kl / x[0].numel()
            elif self.lc.kl_reduction == "latent":
                loss = loss + self.lc.kl_weight * post.kl_per_element().mean()
            else:
                raise ValueError("autoencoder_loss.kl_reduction must be 'pixel' or 'latent', "
                                 f"got {self.lc.kl_reduction!r}")
            self._kl = float(kl.detach())
        if self.disc is not None and step >= self.lc.disc_start:
            g_loss = -self.disc(rec).mean()
            w = self._adaptive_weight(rec_loss, g_loss) if torch.is_grad_enabled() else 1.0
            loss = loss + self.lc.disc_weight * w * g_loss
        # the discriminator steps outside autocast (after_step), in its own float32
        self._last = (x.detach().float(), rec.detach().float())
        return loss

    def after_step(self, step: int) -> dict[str, float]:
        """Discriminator update on this step's real and reconstructed clips."""
        logs = {"kl": self._kl} if self._kl is not None else {}
        if self.disc is None or step < self.lc.disc_start or self._last is None:
            return logs
        real, fake = self._last
        d_loss = hinge_d_loss(self.disc(real), self.disc(fake))
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        if dist.is_initialized():  # every rank steps the same discriminator (it is small)
            for p in self.disc.parameters():
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()
        self.disc_opt.step()
        return {**logs, "d_loss": d_loss.item()}

    def state_tensors(self) -> dict[str, Tensor]:
        if self.disc is None:
            return {}
        out = {f"disc.{k}": v for k, v in self.disc.state_dict().items()}
        opt_t, _ = optimizer_to_tensors(self.disc_opt)
        out.update({f"disc_opt.{k}": v for k, v in opt_t.items()})
        return out

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if self.disc is None:
            return
        self.disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
        opt = {k[9:]: v for k, v in tensors.items() if k.startswith("disc_opt.")}
        if opt:
            meta = {"param_groups": self.disc_opt.state_dict()["param_groups"], "scalars": {}}
            optimizer_from_tensors(self.disc_opt, opt, meta)

    def build_dataset(self, seed: int):
        return DATASETS.get(self.cfg.data.kind)(self.cfg.data, seed)

    @torch.no_grad()
    def on_checkpoint(self, ema_state: dict[str, Tensor], batch: Callable[[int], dict]) -> None:
        """Measure the latent scale factor (1 / std of posterior means) on a few batches, with
        the EMA weights the checkpoint holds (the same batches every time, so a frozen encoder
        measures the same factor again)."""
        ema = type(self.model).from_config(self.model.config_dict()).to(self.device)
        ema.load_state_dict(ema_state)  # an unsharded copy, whatever wraps the trained model
        zs = []
        for i in range(self.lc.scale_batches):
            x = batch(10 ** 6 + i)["video"].to(self.device)
            zs.append(ema.latents(x, scaled=False).flatten())
        std = torch.cat(zs).float().std().item()
        self.model.scale_factor = 1.0 / max(std, 1e-6)
