"""What a training step optimises. The :class:`~vidiff.training.Trainer` owns the loop (data,
optimizer, EMA, accumulation, checkpoints, DDP); a task turns a batch into a loss.

* :class:`DiffusionTask` - the denoising loss of any denoiser (pixel or latent space), with
  class-label dropout for classifier-free guidance, joint image-video frame groups, fps and the
  frame-mask mix of frame-conditioned training.
* :class:`AutoencoderTask` - LVDM's video autoencoder: L1/MSE reconstruction, an optional
  perceptual (LPIPS) term, KL, and a 3D patch discriminator with hinge loss and adaptive weight
  that starts after a configurable step. It keeps its discriminator and optimizer itself and
  hands their tensors to the checkpoint.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import AutoencoderLossConfig
from ..diffusion import build_schedule, diffusion_loss
from ..diffusion.masks import sample_frame_masks

__all__ = ["DiffusionTask", "AutoencoderTask", "build_task", "hinge_d_loss"]

log = logging.getLogger(__name__)


class DiffusionTask:
    """``loss(batch, g)``: the weighted denoising loss of ``net`` on the batch."""

    def __init__(self, cfg, model: nn.Module, device: torch.device, autoencoder=None):
        self.cfg, self.model, self.device = cfg, model, device
        self.schedule = build_schedule(cfg.diffusion.schedule)
        self.autoencoder = autoencoder

    def _cond(self, batch: dict, g: torch.Generator) -> dict[str, Any]:
        cond: dict[str, Any] = {}
        mc = getattr(self.model, "config", None)
        if "label" in batch and getattr(mc, "num_classes", None) is not None:
            lab = batch["label"].to(self.device)
            drop = torch.rand(lab.shape, generator=g) < self.cfg.diffusion.cond_drop_prob
            cond["class_labels"] = torch.where(drop.to(self.device), mc.num_classes, lab)
        if "frame_groups" in batch:
            cond["frame_groups"] = batch["frame_groups"].to(self.device)
        if getattr(mc, "fps_conditioning", False) and "fps" in batch:
            cond["fps"] = batch["fps"].to(self.device)
        return cond

    def loss(self, net: nn.Module, batch: dict, g: torch.Generator, step: int) -> Tensor:
        dc = self.cfg.diffusion
        if "latents" in batch:  # a latent cache: encoded once, scaled here
            if self.autoencoder is None:
                raise ValueError("training on cached latents needs `autoencoder:` in the recipe "
                                 "(its scale factor, and the decoder the checkpoint carries)")
            x0 = batch["latents"].to(self.device) * self.autoencoder.config.scale_factor
        else:
            x0 = batch["video"].to(self.device)
            if self.autoencoder is not None:
                with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
                    x0 = self.autoencoder.latents(x0.float())
        cond = self._cond(batch, g)
        given, cond_t = None, 0.0
        if dc.frame_masks.active:  # frame-conditioned training (prediction, interpolation, ...)
            k = self.cfg.data.joint_images
            B = x0.shape[0]
            given, cond_t = sample_frame_masks(dc.frame_masks, B, x0.shape[2] - k, g)
            if k:  # appended images are never given
                given = torch.cat([given, torch.zeros(B, k, dtype=torch.bool)], dim=1)
            given, cond_t = given.to(self.device), cond_t.to(self.device)
            if getattr(self.model.config, "mask_channel", False):
                cond["frame_mask"] = given
        tt = self.schedule.sample_t((x0.shape[0],), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        return diffusion_loss(net, self.schedule, x0, prediction=dc.prediction,
                              weighting=dc.weighting, snr_gamma=dc.snr_gamma,
                              snr_floor=dc.snr_floor, t=tt, noise=noise,
                              given=given, cond_t=cond_t, **cond)

    # no extra state
    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def state_tensors(self) -> dict[str, Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        pass

    def before_save(self, trainer) -> None:
        pass


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())


class AutoencoderTask:
    """Reconstruction (+ perceptual + KL + adversarial) loss of a :class:`VideoAutoencoder`."""

    def __init__(self, cfg, model: nn.Module, device: torch.device):
        from ..models.discriminator import PatchDiscriminator3D
        from ..nn.perceptual import load_perceptual

        self.cfg, self.model, self.device = cfg, model, device
        lc: AutoencoderLossConfig = cfg.autoencoder_loss
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
        last = self.model.dec_out.weight
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
            loss = loss + self.lc.kl_weight * kl / x[0].numel()
            self._kl = float(kl.detach())
        if self.disc is not None and step >= self.lc.disc_start:
            g_loss = -self.disc(rec).mean()
            w = self._adaptive_weight(rec_loss, g_loss) if torch.is_grad_enabled() else 1.0
            loss = loss + self.lc.disc_weight * w * g_loss
        self._last = (x.detach(), rec.detach())
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
        self.disc_opt.step()
        return {**logs, "d_loss": d_loss.item()}

    def state_tensors(self) -> dict[str, Tensor]:
        if self.disc is None:
            return {}
        from .checkpoint import optimizer_to_tensors
        out = {f"disc.{k}": v for k, v in self.disc.state_dict().items()}
        opt_t, _ = optimizer_to_tensors(self.disc_opt)
        out.update({f"disc_opt.{k}": v for k, v in opt_t.items()})
        return out

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if self.disc is None:
            return
        from .checkpoint import optimizer_from_tensors
        self.disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
        opt = {k[9:]: v for k, v in tensors.items() if k.startswith("disc_opt.")}
        if opt:
            meta = {"param_groups": self.disc_opt.state_dict()["param_groups"], "scalars": {}}
            optimizer_from_tensors(self.disc_opt, opt, meta)

    @torch.no_grad()
    def before_save(self, trainer) -> None:
        """Measure the latent scale factor (1 / std of posterior means) on a few batches, with
        the EMA weights the checkpoint holds (the same batches every time, so a frozen encoder
        measures the same factor again)."""
        import copy

        from ..models.video_ae import DiagonalGaussian

        ema = copy.deepcopy(self.model)
        ema.load_state_dict(trainer.ema.state_dict())
        zs = []
        for i in range(self.lc.scale_batches):
            x = trainer.batch(10 ** 6 + i)["video"].to(self.device)
            post = ema.encode(x)
            zs.append((post.mean if isinstance(post, DiagonalGaussian) else post).flatten())
        std = torch.cat(zs).float().std().item()
        self.model.config.scale_factor = 1.0 / max(std, 1e-6)


def build_task(cfg, model: nn.Module, device: torch.device, autoencoder=None):
    if cfg.task == "diffusion":
        return DiffusionTask(cfg, model, device, autoencoder)
    if cfg.task == "autoencoder":
        return AutoencoderTask(cfg, model, device)
    raise ValueError(f"unknown task {cfg.task!r}; choose diffusion or autoencoder")
