"""Text/class/unconditional video generation, frame-conditioned extension, in the diffusers style.

``pipe = VideoDiffusionPipeline.from_pretrained(checkpoint_dir)``;
``frames = pipe(num_videos=4, num_frames=8, num_inference_steps=50, sampler="ddim")`` returns
uint8 ``(N, F, H, W, 3)`` (``output_type="np"``) or float ``(N, C, F, H, W)`` in ``[-1, 1]``
(``"pt"``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import DiffusionConfig, ExperimentConfig, from_dict, to_dict
from ..diffusion import (SAMPLERS, AutoGuidance, ClassifierFreeGuidance, FrameConditioning,
                         NetworkDenoiser, build_schedule, sample)
from ..models.modeling import ModelMixin, load_model
from ..training.checkpoint import resolve_checkpoint

__all__ = ["VideoDiffusionPipeline"]

_SAMPLER_KW = {"ddpm": {"gamma"}, "ancestral": {"gamma"}, "ddim": {"eta"},
               "pc": {"delta", "gamma", "corrector_steps"}, "dpmpp_2m": set()}


def same_encoder(a: ModelMixin, b: ModelMixin) -> bool:
    """Whether two autoencoders map clips to the same latents (identical encoder weights)."""
    ma, mb = a.encoder_modules(), b.encoder_modules()
    sa = [t for m in ma for t in m.state_dict().values()]
    sb = [t for m in mb for t in m.state_dict().values()]
    return len(sa) == len(sb) and all(x.shape == y.shape and torch.equal(x, y)
                                      for x, y in zip(sa, sb))


class VideoDiffusionPipeline:
    """A denoiser network plus its diffusion settings.

    Args:
        model: the network (e.g. :class:`~vidiff.models.UNet3D`).
        diffusion: schedule, prediction type and clipping.
        experiment: the full recipe the model was trained with (data size, sampling defaults).
    """

    def __init__(self, model: ModelMixin, diffusion: DiffusionConfig,
                 experiment: ExperimentConfig | None = None, autoencoder: ModelMixin | None = None,
                 guide_model: ModelMixin | None = None,
                 key_pipeline: "VideoDiffusionPipeline | None" = None):
        self.model = model.eval()
        #: hierarchical long video: the model of the key-frame rate (its own recipe, this
        #: pipeline's autoencoder), used by :func:`~vidiff.pipelines.long_video.hierarchical`
        self.key_pipeline = key_pipeline
        #: autoguidance: a weaker model of the same data and diffusion settings (smaller, trained
        #: shorter) that sampling is guided away from (``autoguidance_scale``)
        self.guide_model = guide_model.eval() if guide_model is not None else None
        #: latent diffusion: the denoiser works on ``autoencoder.latents(x)``; outputs are decoded
        self.autoencoder = autoencoder.eval() if autoencoder is not None else None
        self.diffusion = diffusion
        self.experiment = experiment or ExperimentConfig()
        self.schedule = build_schedule(diffusion.schedule)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "VideoDiffusionPipeline":
        """Load a checkpoint directory (``config.json`` + ``model.safetensors`` +
        ``pipeline.json``, with ``autoencoder/`` for a latent model, ``guide/`` for an
        autoguidance model and ``key/`` for a key-frame pipeline when present), a run's
        ``checkpoints`` folder, or a run folder."""
        d = resolve_checkpoint(path)
        model = load_model(d, map_location=device)
        exp = ExperimentConfig()
        if (d / "pipeline.json").is_file():
            exp = from_dict(ExperimentConfig, json.loads((d / "pipeline.json").read_text()),
                            "pipeline")
        ae, guide = (load_model(d / n, map_location=device) if (d / n).is_dir() else None
                     for n in ("autoencoder", "guide"))
        pipe = cls(model, exp.diffusion, exp, ae, guide)
        if (d / "key").is_dir():
            key = cls.from_pretrained(d / "key", device=device)
            key.autoencoder = ae
            pipe.key_pipeline = key
        return pipe

    def _load_companion(self, path: str | Path, what: str) -> "VideoDiffusionPipeline":
        """Load a checkpoint that samples alongside this one (guide, key-frame model); it must
        share this pipeline's noise schedule and prediction type."""
        other = VideoDiffusionPipeline.from_pretrained(path, device=str(self.device))
        if (other.diffusion.schedule != self.diffusion.schedule
                or other.diffusion.prediction != self.diffusion.prediction):
            raise ValueError(f"{path}: {what} needs the same noise schedule and prediction "
                             "type as the model it works with")
        return other

    def attach_key_pipeline(self, path: str | Path) -> None:
        """Use the checkpoint at ``path`` as the key-frame model of hierarchical generation.
        It must work in this pipeline's latent space: the same encoder (its decoder is not
        used), schedule and prediction type."""
        other = self._load_companion(path, "a key-frame model")
        if (other.autoencoder is None) != (self.autoencoder is None):
            raise ValueError(f"{path}: a key-frame model must be latent exactly when this "
                             "pipeline is")
        if self.autoencoder is not None:
            if not (self.autoencoder.config.scale_factor == other.autoencoder.config.scale_factor
                    and same_encoder(self.autoencoder, other.autoencoder)):
                raise ValueError(f"{path}: the key-frame model was trained on another "
                                 "autoencoder's latents (encoder or scale factor differ)")
            other.autoencoder = self.autoencoder
        self.key_pipeline = other

    def replace_decoder(self, path: str | Path) -> None:
        """Decode with the autoencoder at ``path``: one whose decoder was fine-tuned with the
        encoder frozen (``autoencoder_loss.freeze_encoder``), so this latent model's latent space
        is unchanged. The latent scale factor stays the one the model was trained with."""
        if self.autoencoder is None:
            raise ValueError("replace_decoder: this pipeline has no autoencoder")
        new = load_model(resolve_checkpoint(path), map_location=str(self.device)).eval()
        if type(new) is not type(self.autoencoder) or not same_encoder(self.autoencoder, new):
            raise ValueError(f"{path}: its encoder differs from the one this model was trained "
                             "on; only a decoder fine-tuned with freeze_encoder can replace it")
        new.config.scale_factor = self.autoencoder.config.scale_factor
        self.autoencoder = new
        if self.key_pipeline is not None:
            self.key_pipeline.autoencoder = new

    def attach_guide(self, path: str | Path) -> None:
        """Use the checkpoint at ``path`` as the autoguidance model. It must share this
        pipeline's schedule, parameterisation and sample shape (a smaller or shorter-trained
        model of the same data)."""
        other = self._load_companion(path, "a guide model")
        if other.sample_shape(1, None) != self.sample_shape(1, None):
            raise ValueError(f"{path}: a guide model must work on the same sample shape "
                             f"({other.sample_shape(1, None)} vs {self.sample_shape(1, None)})")
        self.guide_model = other.model

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None,
                        _with_autoencoder: bool = True) -> None:
        """Write a sampling checkpoint that :meth:`from_pretrained` loads: the model (as loaded:
        EMA weights for a training checkpoint), ``pipeline.json`` (the recipe with the current
        :attr:`experiment` sample defaults) and ``autoencoder/`` / ``guide/`` / ``key/`` when
        present (``key/`` without an autoencoder: it shares this one). ``dtype``: store the
        weights as e.g. ``torch.float16`` (half the size; loading casts back)."""
        d = Path(directory)
        self.model.save_pretrained(d, dtype=dtype)
        (d / "pipeline.json").write_text(json.dumps(to_dict(self.experiment), indent=2))
        subs = (("autoencoder", self.autoencoder if _with_autoencoder else None),
                ("guide", self.guide_model), ("key", self.key_pipeline))
        for name, sub in subs:
            if (d / name).is_dir():  # a stale sub-model from an earlier export
                shutil.rmtree(d / name)
            if isinstance(sub, VideoDiffusionPipeline):
                sub.save_pretrained(d / name, dtype=dtype, _with_autoencoder=False)
            elif sub is not None:
                sub.save_pretrained(d / name, dtype=dtype)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def sample_shape(self, num_videos: int, num_frames: int | None) -> tuple[int, ...]:
        c = self.model.config
        d = self.experiment.data
        size = d.moving_shapes.size if d.kind == "moving_shapes" else d.size
        F = num_frames or self.experiment.sample.num_frames or (
            d.moving_shapes.num_frames if d.kind == "moving_shapes" else d.num_frames)
        if self.autoencoder is not None:
            ft, fs = self.autoencoder.factors
            if F % ft or size % fs:
                raise ValueError(f"num_frames ({F}) must be divisible by f_t={ft} and the size "
                                 f"({size}) by f_s={fs}")
            return (num_videos, c.out_channels, F // ft, size // fs, size // fs)
        return (num_videos, c.out_channels, F, size, size)

    def denoiser(self, autocast: bool = False, model: ModelMixin | None = None,
                 **cond: Any) -> NetworkDenoiser:
        """``(z, t) -> x0_hat`` of :attr:`model` (or of ``model``, e.g. the guide model)."""
        dt = torch.bfloat16 if autocast else None
        return NetworkDenoiser(model or self.model, self.schedule, self.diffusion.prediction,
                               clip=self.diffusion.clip, autocast_dtype=dt, **cond)

    @torch.no_grad()
    def __call__(self, num_videos: int = 1, num_frames: int | None = None,
                 num_inference_steps: int | None = None, sampler: str | None = None,
                 guidance_scale: float | None = None, class_labels: Tensor | list[int] | None = None,
                 fps: float | None = None, generator: torch.Generator | None = None,
                 given_frames: Tensor | None = None, given_mask: Tensor | None = None,
                 conditioning_method: str = "reconstruction", guidance_weight: float = 2.0,
                 cond_t: float | None = None, uncond_weight: float = 0.0,
                 autoguidance_scale: float | None = None,
                 autoguidance_interval: tuple[float, float] | None = None,
                 output_type: str = "np",
                 progress: bool = True, autocast: bool = False,
                 **sampler_kw: Any):
        """Generate ``num_videos`` clips.

        ``given_frames`` ``(N, C, F, H, W)`` in ``[-1, 1]`` with bool ``given_mask`` ``(N, F)``
        conditions on known frames (extension, interpolation) by ``conditioning_method``
        (``"replacement"`` or ``"reconstruction"`` with weight ``guidance_weight``). ``cond_t``
        is the given frames' noise level: ``None`` noises them to the current ``t`` (a model
        trained without given frames, VDM); a float (0 = clean) for models trained with frame
        masks, whose mask channel is then set too. ``uncond_weight`` is LVDM's unconditional
        guidance. ``autoguidance_scale`` (default: the checkpoint's) guides away from
        :attr:`guide_model`: ``(1 + w) D - w D_guide``, at the noise levels ``lo < t <= hi`` of
        ``autoguidance_interval`` (default: the checkpoint's; ``(0, 1)`` = every step). For a
        latent pipeline ``given_frames`` are latents (see :meth:`encode`) and
        ``output_type="latent"`` returns latents without decoding.
        """
        s = self.experiment.sample
        sampler = sampler or s.sampler
        steps = num_inference_steps or s.steps
        w = s.guidance_scale if guidance_scale is None else guidance_scale
        w_ag = s.autoguidance_scale if autoguidance_scale is None else autoguidance_scale
        ag_interval = autoguidance_interval or s.autoguidance_interval
        if w_ag and self.guide_model is None:
            raise ValueError("autoguidance_scale needs a guide model (a guide/ folder in the "
                             "checkpoint, or pipe.guide_model)")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
        bad = set(sampler_kw) - _SAMPLER_KW[sampler]
        if bad:
            raise ValueError(f"sampler {sampler!r} takes no option(s) {sorted(bad)}")
        shape = self.sample_shape(num_videos, num_frames)
        dev = self.device
        cond: dict[str, Any] = {}
        uncond: dict[str, Any] = {}
        mc = self.model.config
        if class_labels is None and w and getattr(mc, "num_classes", None) is not None:
            class_labels = self.random_class_labels(num_videos, generator)
        if class_labels is not None:
            if getattr(mc, "num_classes", None) is None:
                raise ValueError("this model is not class-conditional")
            lab = torch.as_tensor(class_labels, device=dev).long().reshape(-1)
            if lab.numel() == 1:
                lab = lab.expand(num_videos)
            cond["class_labels"] = lab
            uncond["class_labels"] = torch.full_like(lab, mc.num_classes)
        if getattr(mc, "fps_conditioning", False):
            f = torch.full((num_videos,), float(fps or s.fps), device=dev)
            cond["fps"] = uncond["fps"] = f
        base = self.denoiser(autocast)
        den = base.with_cond(**cond)
        if w and "class_labels" not in cond:
            raise ValueError("guidance_scale needs a condition to guide towards (class_labels "
                             "on a class-conditional model)")
        if w and uncond:
            den = ClassifierFreeGuidance(base, w, cond, uncond)
        if w_ag:
            weak = self.denoiser(autocast, model=self.guide_model, **cond)
            den = AutoGuidance(den, weak, w_ag, clip=self.diffusion.clip, interval=ag_interval)
        if given_frames is not None:
            if given_mask is None:
                raise ValueError("given_frames needs given_mask (N, F)")
            den = FrameConditioning(den, self.schedule, given_frames.to(dev).float(),
                                    given_mask.to(dev), method=conditioning_method,
                                    weight=guidance_weight, cond_t=cond_t,
                                    pass_mask=getattr(mc, "mask_channel", False),
                                    uncond_weight=uncond_weight, generator=generator)
        z = torch.randn(shape, generator=generator).to(dev)
        x = sample(sampler, den, self.schedule, z, steps, generator=generator, progress=progress,
                   **sampler_kw)
        if output_type == "latent":
            return x
        if self.autoencoder is not None:
            x = self.decode_latents(x)
        x = x.clamp(-1, 1)
        if output_type == "pt":
            return x
        if output_type != "np":
            raise ValueError("output_type must be 'np', 'pt' or 'latent'")
        return ((x + 1) * 127.5).round().byte().permute(0, 2, 3, 4, 1).cpu().numpy()

    def random_class_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` labels drawn uniformly from a class-conditional model's classes (what guided
        sampling uses when no label is given)."""
        k = getattr(self.model.config, "num_classes", None)
        if k is None:
            raise ValueError("this model is not class-conditional")
        return torch.randint(0, k, (n,), generator=generator)

    @torch.no_grad()
    def decode_latents(self, z: Tensor, chunk: int = 4) -> Tensor:
        """Scaled latents ``(N, c, l, h, w)`` -> pixels ``(N, C, l * f_t, H, W)``, chunk by chunk."""
        z = z / self.autoencoder.config.scale_factor
        return torch.cat(list(self.autoencoder.decode_chunked(z, chunk=chunk)), dim=2)

    @property
    def frame_conditioned(self) -> bool:
        """Whether the model was trained with given frames (frame-mask mix): then given frames
        go in clean or slightly noised (``cond_t`` >= 0); otherwise VDM-style (noised to ``t``,
        reconstruction guidance)."""
        return self.experiment.diffusion.frame_masks.active

    def conditioning_defaults(self) -> dict[str, Any]:
        if self.frame_conditioned:
            return {"cond_t": 0.0, "conditioning_method": "replacement"}
        return {"cond_t": None, "conditioning_method": "reconstruction"}

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """Pixels ``(N, C, F, H, W)`` in ``[-1, 1]`` -> the denoiser's space (scaled latents for a
        latent pipeline, unchanged otherwise)."""
        if self.autoencoder is None:
            return video.to(self.device).float()
        return self.autoencoder.latents(video.to(self.device).float())

    def to_uint8(self, x: Tensor) -> np.ndarray:
        """Model-space frames -> uint8 ``(N, F, H, W, 3)`` (decoding latents chunk by chunk)."""
        if self.autoencoder is not None:
            x = self.decode_latents(x)
        return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 4, 1).cpu().numpy()

    def extend(self, video: Tensor, total_frames: int, context_frames: int | None = None,
               **kw: Any) -> np.ndarray:
        """Autoregressive extension: repeatedly generate the next window given the last
        ``context_frames`` frames (model-space frames: latent frames for a latent pipeline).
        ``video``: pixels ``(N, C, F, H, W)`` in ``[-1, 1]``; returns uint8
        ``(N, total_frames, H, W, 3)``."""
        from .long_video import autoregressive

        z = self.encode(video)
        ft = self.autoencoder.factors[0] if self.autoencoder is not None else 1
        window = self.sample_shape(1, None)[2]
        need = -(-total_frames // ft)
        chunks = [z] + list(autoregressive(self, need - z.shape[2], window=window,
                                           context=context_frames or window // 2, first=z, **kw))
        return self.to_uint8(torch.cat(chunks, dim=2))[:, :total_frames]
