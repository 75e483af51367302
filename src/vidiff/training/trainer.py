"""The training loop shared by every recipe.

AdamW with linear warm-up (and optional cosine decay), EMA, gradient clipping and accumulation,
bf16 autocast, atomic checkpoints with exact resume, DDP through ``torchrun`` (gloo on CPU,
NCCL on GPU), a tqdm bar with loss and speed, and CSV (+ TensorBoard when installed) logs.

Exact resume: every random draw of step ``k`` (data, times, noise, dropout) comes from
generators seeded by ``(seed, k, rank)``, and the data of step ``k`` is a pure function of
``(seed, k, rank)``; so a run that stops and resumes follows the uninterrupted loss curve.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..config import ExperimentConfig, to_dict
from ..data.datasets import (ImageFolderDataset, MovingShapesDataset, VideoFolderDataset,
                             collate)
from .tasks import build_task
from ..models.modeling import MODEL_REGISTRY, ModelMixin
from .checkpoint import latest_checkpoint, load_checkpoint, optimizer_from_tensors, save_checkpoint

__all__ = ["Trainer", "build_model", "build_dataset", "TrainResult"]

log = logging.getLogger(__name__)


def build_model(spec: dict) -> ModelMixin:
    """A model from a config mapping ``{"type": "UNet3D", **fields}``."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in MODEL_REGISTRY:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[kind].from_config(spec)


def build_dataset(cfg: ExperimentConfig, seed: int | None = None):
    d = cfg.data
    seed = cfg.train.seed if seed is None else seed
    if d.kind == "moving_shapes":
        return MovingShapesDataset(d.moving_shapes, seed=seed, label=d.label)
    if d.kind in ("video_folder", "video_csv"):
        if not d.path:
            raise ValueError("data.path is required for video_folder / video_csv")
        return VideoFolderDataset(d.path, d.num_frames, d.size, d.frame_stride, d.target_fps,
                                  d.on_error, seed)
    if d.kind == "latents":
        if not d.path:
            raise ValueError("data.path is required for data.kind latents (a latent cache file)")
        from ..data.latents import LatentDataset
        return LatentDataset(d.path, d.num_frames, d.frame_stride, d.size)
    raise ValueError(f"unknown data.kind {d.kind!r}; choose moving_shapes, video_folder, "
                     "video_csv or latents")


def _mix(*xs: int) -> int:
    """Deterministic 63-bit mixing of integers (seeding per step / rank)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) + 0x632BE59BD9B4E019 + (h << 6) + (h >> 2))) & ((1 << 63) - 1)
    return h


@dataclass
class TrainResult:
    steps: int
    losses: list[float]
    checkpoint: Path | None


def init_weights_from(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Copy the weights of checkpoint ``path`` (its EMA ``model.safetensors``) into ``model``
    wherever name and shape agree. Returns and logs what was ``loaded``, what the model has that
    the checkpoint lacks (``new``, left as initialised) and what it skipped (``unused``).
    A checkpoint sharing no weight with the model is an error."""
    from safetensors.torch import load_file

    from .checkpoint import resolve_checkpoint
    src = load_file(str(resolve_checkpoint(path) / "model.safetensors"))
    own = model.state_dict()
    loaded = [k for k, v in src.items() if k in own and own[k].shape == v.shape]
    if not loaded:
        raise ValueError(f"init_from {path}: no weight matches this model")
    with torch.no_grad():
        for k in loaded:
            own[k].copy_(src[k])
    rep = {"loaded": loaded, "new": sorted(set(own) - set(loaded)),
           "unused": sorted(set(src) - set(loaded))}
    log.info("init_from %s: %d tensors loaded, new: %s, unused: %s", path, len(loaded),
             rep["new"] or "none", rep["unused"] or "none")
    return rep


class EMA:
    """Exponential moving average of parameters (float32 shadow), with optional warm-up
    ``decay_k = min(decay, (1 + k) / (10 + k))``."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.decay, self.warmup = decay, warmup
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach().float(), 1 - d)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow


class Trainer:
    """Train ``cfg``'s model on ``cfg``'s data. ``Trainer(cfg).fit()`` resumes automatically from
    ``out_dir/checkpoints/latest`` when there is one."""

    def __init__(self, cfg: ExperimentConfig, model: ModelMixin | None = None, dataset=None):
        self.cfg = cfg
        t = cfg.train
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if t.device.startswith("cuda") else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        if t.device.startswith("cuda") and self.distributed:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device(t.device)
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        torch.manual_seed(t.seed)
        self.model = (model or build_model(cfg.model)).to(self.device)
        self.dataset = dataset if dataset is not None else build_dataset(cfg)
        if cfg.data.kind == "latents" and getattr(self.dataset, "meta", None):
            cfg.data.cache_source = self.dataset.meta  # checkpoints then know their data
        self.autoencoder = None
        if cfg.autoencoder:  # latent diffusion: a frozen autoencoder in front of the denoiser
            from ..models.modeling import load_model
            from .checkpoint import resolve_checkpoint
            ae_dir = resolve_checkpoint(cfg.autoencoder)
            self.autoencoder = load_model(ae_dir, map_location="cpu").to(self.device).eval()
            self.autoencoder.requires_grad_(False)
        if t.init_from:
            self.init_report = init_weights_from(self.model, t.init_from)
        self.task = build_task(cfg, self.model, self.device, self.autoencoder)
        self.schedule = getattr(self.task, "schedule", None)
        self.extra_logs: dict[str, float] = {}
        self.images = None
        if cfg.data.joint_images:
            self.images = (ImageFolderDataset(cfg.data.image_path, cfg.data.size, cfg.data.on_error)
                           if cfg.data.image_path else None)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=t.lr, betas=tuple(t.betas),
                                     weight_decay=t.weight_decay)
        self.ema = EMA(self.model, t.ema_decay, t.ema_warmup)
        self.step = 0
        self.out = Path(t.out_dir)
        self.ddp = None
        if self.distributed:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.net = self.ddp or self.model
        if t.compile:
            self.net = torch.compile(self.net)
        self._tb = None

    # -- schedule -------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        t = self.cfg.train
        if step < t.warmup_steps:
            return t.lr * (step + 1) / t.warmup_steps
        if t.min_lr_ratio >= 1.0:
            return t.lr
        p = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
        return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))

    # -- data -----------------------------------------------------------------------------
    def batch(self, step: int, micro: int = 0) -> dict:
        """The micro-batch ``micro`` of ``step`` for this rank (a pure function of its args)."""
        t = self.cfg.train
        B = t.batch_size
        n0 = ((step * t.grad_accum + micro) * self.world + self.rank) * B
        N = len(self.dataset)
        if N >= 10 ** 8:  # synthetic: an endless stream
            idx = [n0 + i for i in range(B)]
        else:
            idx = []
            for n in range(n0, n0 + B):
                epoch, pos = divmod(n, N)
                idx.append(int(self._epoch_order(epoch)[pos]))
        batch = collate([self.dataset[i] for i in idx])
        k = self.cfg.data.joint_images
        if k:
            batch = self._append_images(batch, k, n0)
        return batch

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The shuffled sample order of an epoch (computed once per epoch, not per sample)."""
        if getattr(self, "_order", (None,))[0] != epoch:
            g = torch.Generator().manual_seed(_mix(self.cfg.train.seed, epoch))
            self._order = (epoch, torch.randperm(len(self.dataset), generator=g))
        return self._order[1]

    def _append_images(self, batch: dict, k: int, n0: int) -> dict:
        """Joint image-video training: ``k`` independent images appended to each clip as frames;
        ``frame_groups`` keeps temporal attention from mixing them."""
        x = batch["video"]
        B, C, F_, H, W = x.shape
        imgs = []
        for b in range(B):
            for j in range(k):
                n = _mix(self.cfg.train.seed, n0 + b, j, 17)
                if self.images is not None:
                    imgs.append(self.images[n % len(self.images)]["video"])
                else:  # frames of other clips stand in for an image set
                    clip = self.dataset[(n % (10 ** 8)) if len(self.dataset) >= 10 ** 8 else n % len(self.dataset)]
                    imgs.append(clip["video"][:, n % clip["video"].shape[1]])
        imgs = torch.stack(imgs).reshape(B, k, C, H, W).permute(0, 2, 1, 3, 4)
        batch["video"] = torch.cat([x, imgs], dim=2)
        groups = torch.zeros(B, F_ + k, dtype=torch.long)
        groups[:, F_:] = torch.arange(1, k + 1)
        batch["frame_groups"] = groups
        return batch

    # -- one step -------------------------------------------------------------------------
    def train_step(self) -> tuple[float, float]:
        """One optimizer step (``grad_accum`` micro-batches). Returns (loss, grad norm)."""
        t = self.cfg.train
        step = self.step
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(step)
        self.net.train()
        total = 0.0
        for micro in range(t.grad_accum):
            g = torch.Generator().manual_seed(_mix(t.seed, step, micro, self.rank, 1))
            torch.manual_seed(_mix(t.seed, step, micro, self.rank, 2))  # dropout
            batch = self.batch(step, micro)
            sync = contextlib.nullcontext()
            if self.ddp is not None and micro < t.grad_accum - 1:
                sync = self.ddp.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=t.bf16):
                    loss = self.task.loss(self.net, batch, g, step)
                (loss / t.grad_accum).backward()
            total += loss.item() / t.grad_accum
        if t.grad_clip:
            gn = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip))
        else:
            gn = float(torch.norm(torch.stack([p.grad.norm() for p in self.model.parameters()
                                               if p.grad is not None])))
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.update(self.model, step)
        self.extra_logs = self.task.after_step(step)
        self.step += 1
        if self.distributed:
            l = torch.tensor([total], device=self.device)
            dist.all_reduce(l)
            total = l.item() / self.world
        return total, gn

    # -- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path | None:
        if self.rank != 0:
            return None
        self.task.before_save(self)
        state = {"step": self.step, "seed": self.cfg.train.seed, "world_size": self.world,
                 "time": time.time()}
        return save_checkpoint(self.out / "checkpoints", self.step, model=self.model,
                               ema_state=self.ema.state_dict(), optimizer=self.opt,
                               trainer_state=state, pipeline=to_dict(self.cfg),
                               keep=self.cfg.train.keep_checkpoints,
                               submodels={"autoencoder": self.autoencoder} if self.autoencoder else None,
                               task_tensors=self.task.state_tensors())

    def resume(self, path: str | Path | None = None) -> bool:
        """Load ``path`` (or ``out_dir/checkpoints/latest``); False if there is none."""
        p = Path(path) if path else latest_checkpoint(self.out / "checkpoints")
        if p is None:
            return False
        ck = load_checkpoint(p)
        self.model.load_state_dict(ck["raw"])
        for k, v in ck["ema"].items():
            self.ema.shadow[k].copy_(v)
        optimizer_from_tensors(self.opt, ck["optimizer"], ck["state"]["optimizer"])
        if ck.get("task"):
            self.task.load_state_tensors(ck["task"])
        self.step = int(ck["state"]["step"])
        if self.rank == 0:
            log.info("resumed from %s at step %d", p, self.step)
        return True

    # -- logging --------------------------------------------------------------------------
    def _log(self, row: dict) -> None:
        if self.rank != 0:
            return
        f = self.out / "log.csv"
        header: list[str] = []
        if f.exists():
            with open(f, newline="") as fh:
                header = next(csv.reader(fh), [])
        if header and set(row) <= set(header):
            with open(f, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=header, restval="").writerow(row)
        else:  # first row, or new columns (e.g. d_loss once the discriminator starts): rewrite
            rows = []
            if header:
                with open(f, newline="") as fh:
                    rows = list(csv.DictReader(fh))
            cols = header + [k for k in row if k not in header]
            with open(f, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=cols, restval="")
                w.writeheader()
                w.writerows(rows + [row])
        if self.cfg.train.tensorboard:
            if self._tb is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                    self._tb = SummaryWriter(str(self.out / "tb"))
                except Exception:  # tensorboard not installed
                    self._tb = False
            if self._tb:
                for k, v in row.items():
                    if k != "step":
                        self._tb.add_scalar(f"train/{k}", v, row["step"])

    # -- the loop -------------------------------------------------------------------------
    def fit(self, steps: int | None = None, resume: bool = True) -> TrainResult:
        """Train until ``steps`` (default ``cfg.train.steps``) total steps; resume first."""
        t = self.cfg.train
        target = t.steps if steps is None else steps
        if resume:
            self.resume()
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "experiment.json").write_text(json.dumps(to_dict(self.cfg), indent=2))
        losses: list[float] = []
        bar = tqdm(total=target, initial=self.step, disable=not t.progress or self.rank != 0,
                   desc=self.cfg.name, dynamic_ncols=True)
        last_t, last_step = time.perf_counter(), self.step
        ckpt = None
        while self.step < target:
            loss, gn = self.train_step()
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {self.step}; lower the "
                                         "learning rate or enable grad_clip")
            losses.append(loss)
            bar.update(1)
            if self.step % t.log_every == 0 or self.step == target:
                now = time.perf_counter()
                sps = (self.step - last_step) / max(now - last_t, 1e-9)
                last_t, last_step = now, self.step
                recent = losses[-t.log_every:]
                row = {"step": self.step, "loss": sum(recent) / len(recent), "grad_norm": gn,
                       "lr": self.lr_at(self.step - 1), "steps_per_s": sps,
                       "samples_per_s": sps * t.batch_size * t.grad_accum * self.world,
                       **self.extra_logs}
                bar.set_postfix(loss=f"{row['loss']:.4f}", sps=f"{sps:.2f}")
                self._log(row)
            if self.step % t.ckpt_every == 0 or self.step == target:
                ckpt = self.save()
        bar.close()
        if self._tb:
            self._tb.flush()
        if self.distributed:  # no rank leaves (tearing down gloo) while rank 0 still writes
            dist.barrier()
        return TrainResult(self.step, losses, ckpt)
