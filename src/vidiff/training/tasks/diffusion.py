"""Training a denoiser: the denoising loss of any model in pixel or latent space.

Class-label dropout for classifier-free guidance and the other conditions come from the
condition encoders (:mod:`vidiff.conditioning`) the model declares; joint image-video frame
groups; the frame-mask mix of frame-conditioned training (LVDM); a frozen autoencoder in front
of the denoiser for latent diffusion, carried by every checkpoint as its ``autoencoder``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from ...conditioning import condition_encoders, model_conditions
from ...data.images import ImageFolderDataset
from ...data.joint import JointImages
from ...diffusion import build_schedule, diffusion_loss
from ...diffusion.masks import sample_frame_masks
from ...models.autoencoder import Autoencoder
from ...models.modeling import ModelMixin, load_model
from ...registry import DATASETS, TASKS
from ..checkpoint import load_autoencoder, resolve_checkpoint
from .base import Task

__all__ = ["DiffusionTask"]

log = logging.getLogger(__name__)


@TASKS.register("diffusion")
class DiffusionTask(Task):
    """The weighted denoising loss (:func:`~vidiff.diffusion.diffusion_loss`) of the model.

    With ``cfg.autoencoder`` (a trained autoencoder directory) the model learns the
    autoencoder's scaled latents: pixel batches are encoded on the fly, cached latents
    (``data.kind: latents``) are only scaled.
    """

    pipeline_class = "VideoDiffusionPipeline"

    def __init__(self, cfg, device: torch.device, model: ModelMixin | None = None):
        super().__init__(cfg, device, model)
        self.schedule = build_schedule(cfg.diffusion.schedule)
        self.autoencoder: Autoencoder | None = None
        if cfg.autoencoder:  # latent diffusion: a frozen autoencoder in front of the denoiser
            try:  # an autoencoder run, or a latent checkpoint's (a shipped one too)
                ae = load_autoencoder(cfg.autoencoder)
            except ValueError as e:
                raise ValueError(f"config.autoencoder: {e}") from e
            self.autoencoder = ae.to(device).eval().requires_grad_(False)
            # an autoencoder whose latents need a pipeline of their own (LaMD's image-to-video)
            self.pipeline_class = getattr(ae, "latent_pipeline", self.pipeline_class)
        # a model that needs a pipeline of its own (Tora's trajectory control)
        self.pipeline_class = getattr(self.model, "pipeline_class", None) or self.pipeline_class
        self.joint: JointImages | None = None
        self.companions = self._companions(cfg, device)
        self.encoders = condition_encoders(self.model, cfg, device, self.companions)

    def _record_sample_shape(self, frames: int, size: int) -> None:
        """Write the clip the model learns (pixels ``frames x size x size``, in its own space)
        into its config, where pipelines read their output shape from, unless the recipe set
        it."""
        ft, fs = self.autoencoder.factors if self.autoencoder is not None else (1, 1)
        given = self.model.sample_shape
        self.model.sample_shape = (given[0] or frames // ft, given[1] or size // fs)

    # -- data -------------------------------------------------------------------------------
    def build_dataset(self, seed: int):
        d = self.cfg.data
        if d.images and d.kind != "moving_shapes":
            raise ValueError(f"data.images makes Moving Shapes items single frames; for images "
                             f"of your own use data.kind: image_folder (not {d.kind})")
        ds = DATASETS.get(d.kind)(d, seed)
        self._record_sample_shape(*ds.clip_shape)
        if d.joint_images:
            images = ImageFolderDataset(d.image_path, d.size, d.on_error) if d.image_path \
                else None
            self.joint = JointImages(ds, d.joint_images, self.cfg.train.seed, images,
                                     self._encode_image if self.autoencoder else None, d.size)
        return ds

    def prepare_batch(self, batch: dict, n0: int) -> dict:
        return self.joint.append(batch, n0) if self.joint is not None else batch

    @torch.no_grad()
    def _encode_images(self, imgs: Tensor) -> Tensor:
        """Images ``(N, C, H, W)`` -> unscaled latent frames ``(N, c, h, w)``, in one encoder
        call (each image held for ``f_t`` frames)."""
        ft = self.autoencoder.factors[0]
        clips = imgs[:, :, None].expand(-1, -1, ft, -1, -1).to(self.device).float()
        return self.autoencoder.latents(clips, scaled=False)[:, :, 0]

    def _encode_image(self, img: Tensor) -> Tensor:
        """One image ``(C, H, W)`` -> one unscaled latent frame ``(c, h, w)`` (data loading)."""
        return self._encode_images(img[None])[0].cpu()

    @torch.no_grad()
    def _latents(self, batch: dict) -> Tensor:
        """Pixel clips -> scaled latents; appended joint images are encoded on their own (one
        latent frame each, one encoder call for all) and get their own frame groups."""
        x = batch["video"].to(self.device).float()
        k = self.cfg.data.joint_images if "frame_groups" in batch else 0
        with torch.autocast(self.device.type, enabled=False):
            z = self.autoencoder.latents(x[:, :, :x.shape[2] - k])
            if hasattr(self.autoencoder, "clip_conditions"):  # LaMD: the first frame's content
                batch.update(self.autoencoder.clip_conditions(x))
            if k:
                B, C, _, H, W = x.shape
                imgs = x[:, :, -k:].permute(0, 2, 1, 3, 4).reshape(B * k, C, H, W)
                zi = self._encode_images(imgs).reshape(B, k, z.shape[1], *z.shape[3:])
                z = torch.cat([z, zi.permute(0, 2, 1, 3, 4) * self.autoencoder.scale_factor], 2)
                groups = torch.zeros(B, z.shape[2], dtype=torch.long)
                groups[:, -k:] = torch.arange(1, k + 1)
                batch["frame_groups"] = groups
        return z

    # -- loss -------------------------------------------------------------------------------
    def _cond(self, batch: dict, g: torch.Generator) -> dict[str, Any]:
        cond: dict[str, Any] = {}
        for name, enc in self.encoders.items():
            v = enc.for_training(self.model, batch, device=self.device, generator=g,
                                 drop_prob=self.cfg.diffusion.cond_drop_prob)
            if v is not None:
                cond[name] = v
        if "frame_groups" in batch and "frame_groups" in model_conditions(self.model):
            cond["frame_groups"] = batch["frame_groups"].to(self.device)
        return cond

    def loss(self, net: nn.Module, batch: dict, g: torch.Generator, step: int) -> Tensor:
        dc = self.cfg.diffusion
        if "latents" in batch:  # a latent cache: encoded once, scaled here
            if self.autoencoder is None:
                raise ValueError("training on cached latents needs `autoencoder:` in the recipe "
                                 "(its scale factor, and the decoder the checkpoint carries)")
            if hasattr(self.autoencoder, "clip_conditions"):
                raise ValueError(f"{type(self.autoencoder).__name__} conditions its latents on "
                                 "each clip (clip_conditions), which a latent cache does not "
                                 "hold: train on clips (data.kind: moving_shapes or videos)")
            x0 = batch["latents"].to(self.device) * self.autoencoder.scale_factor
        elif self.autoencoder is not None:
            x0 = self._latents(batch)
        else:
            x0 = batch["video"].to(self.device)
        want = self.model.config.in_channels
        if x0.shape[1] != want:
            raise ValueError(f"config.model.in_channels is {want} but the data gives "
                             f"{x0.shape[1]}-channel {'latents' if self.autoencoder else 'clips'}"
                             " (a latent model's in_channels is the autoencoder's "
                             "latent_channels)")
        cond = self._cond(batch, g)
        given, cond_t = None, 0.0
        if dc.frame_masks.active:  # frame-conditioned training (prediction, interpolation, ...)
            k = self.cfg.data.joint_images
            B = x0.shape[0]
            given, cond_t = sample_frame_masks(dc.frame_masks, B, x0.shape[2] - k, g)
            if k:  # appended images are never given
                given = torch.cat([given, torch.zeros(B, k, dtype=torch.bool)], dim=1)
            given, cond_t = given.to(self.device), cond_t.to(self.device)
            if "frame_mask" in model_conditions(self.model):
                cond["frame_mask"] = given
        schedule = self.schedule.for_shape(tuple(x0.shape))  # a resolution-aware time shift
        tt = schedule.sample_t((x0.shape[0],), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        return diffusion_loss(net, schedule, x0, prediction=dc.prediction,
                              weighting=dc.weighting, snr_gamma=dc.snr_gamma,
                              snr_floor=dc.snr_floor, t=tt, noise=noise,
                              given=given, cond_t=cond_t, **cond)

    @staticmethod
    def _companions(cfg, device: torch.device) -> dict[str, ModelMixin]:
        """Frozen models a condition needs (Tora's trajectory autoencoder, named by the
        recipe's ``trajectory.autoencoder``), carried by every checkpoint."""
        path = (cfg.trajectory or {}).get("autoencoder") if cfg.trajectory else None
        if not path:
            return {}
        ae = load_model(resolve_checkpoint(path), map_location="cpu")
        return {"trajectory_autoencoder": ae.to(device).eval().requires_grad_(False)}

    def submodels(self) -> dict[str, ModelMixin]:
        out = {"autoencoder": self.autoencoder} if self.autoencoder is not None else {}
        return {**out, **self.companions}
