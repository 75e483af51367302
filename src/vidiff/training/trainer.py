"""The training loop shared by every recipe: it knows nothing of what is trained.

The task (:mod:`vidiff.training.tasks`) builds the model, its sub-models and the dataset and
computes the loss; the trainer owns data order, AdamW with linear warm-up (and optional cosine decay), EMA, gradient clipping and accumulation,
bf16 autocast, atomic checkpoints with exact resume, DDP or FSDP2 through ``torchrun`` (gloo on
CPU, NCCL on GPU; :mod:`vidiff.training.distributed`), a tqdm bar with loss and speed, and CSV (+ TensorBoard when installed) logs.

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
from torch import nn
from tqdm.auto import tqdm

from ..config import ExperimentConfig, to_dict
from ..data.datasets import collate
from ..data.joint import mix_seed as _mix
from ..devices import is_out_of_memory
from ..files import read_tensors
from ..models.modeling import ModelMixin, build_model
from .checkpoint import (latest_checkpoint, load_checkpoint, optimizer_state_from_tensors,
                         resolve_checkpoint, save_checkpoint)
from .distributed import Distributed
from .trainable import apply_trainable
from .resume import check_batch, check_model, truncate_log
from .tasks import build_task

__all__ = ["Trainer", "build_model", "TrainResult"]

log = logging.getLogger(__name__)


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
    src = read_tensors(resolve_checkpoint(path) / "model.safetensors")
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
        self.dist = Distributed(t.device, t.distributed)
        self.rank, self.world, self.device = self.dist.rank, self.dist.world, self.dist.device
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        torch.manual_seed(t.seed)
        #: what is trained: it owns the model, its sub-models, the data and the loss
        self.task = build_task(cfg, self.device, model)
        self.model = self.task.model
        self.dataset = dataset if dataset is not None else self.task.build_dataset(t.seed)
        if t.init_from:
            self.init_report = init_weights_from(self.model, t.init_from)
        #: what the optimiser trains (``train.trainable`` patterns; the rest frozen)
        self.trainable = apply_trainable(self.model, t.trainable)
        self.extra_logs: dict[str, float] = {}
        self.net = self.dist.wrap(self.model)  # DDP / FSDP2 (shards the model in place)
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                     lr=t.lr, betas=tuple(t.betas),
                                     weight_decay=t.weight_decay)
        self.ema = EMA(self.model, t.ema_decay, t.ema_warmup)
        self.step = 0
        self.out = Path(t.out_dir)
        if t.compile:
            self.net = torch.compile(self.net)
        self._tb = None
        self._order: tuple[int | None, torch.Tensor | None] = (None, None)

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
        return self.task.prepare_batch(collate([self.dataset[i] for i in idx]), n0)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The shuffled sample order of an epoch (computed once per epoch, not per sample)."""
        if self._order[0] != epoch:
            g = torch.Generator().manual_seed(_mix(self.cfg.train.seed, epoch))
            self._order = (epoch, torch.randperm(len(self.dataset), generator=g))
        return self._order[1]

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
            if micro < t.grad_accum - 1:
                sync = self.dist.no_sync(self.net)
            with sync:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=t.bf16):
                    loss = self.task.loss(self.net, batch, g, step)
                (loss / t.grad_accum).backward()
            total += loss.item() / t.grad_accum
        gn = self.dist.clip_grad_norm(self.model, t.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.update(self.model, step)
        self.extra_logs = self.task.after_step(step)
        self.step += 1
        return self.dist.mean(total), gn

    # -- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint (rank 0; with FSDP every rank takes part in gathering it)."""
        weights = self.dist.full_state(self.model)
        ema = self.dist.full_state(self.ema.shadow)
        opt_state = self.dist.full_optimizer_state(self.opt)
        if self.rank != 0:
            return None
        self.task.on_checkpoint(ema, self.batch)
        t = self.cfg.train
        state = {"step": self.step, "seed": t.seed, "world_size": self.world,
                 "batch_size": t.batch_size, "grad_accum": t.grad_accum, "time": time.time()}
        return save_checkpoint(self.out / "checkpoints", self.step,
                               model=self.model,
                               weights=weights, ema_state=ema, optimizer=opt_state,
                               trainer_state=state, pipeline=to_dict(self.cfg),
                               keep=self.cfg.train.keep_checkpoints,
                               submodels=self.task.submodels(),
                               task_tensors=self.task.state_tensors(),
                               pipeline_class=self.task.pipeline_class)

    def resume(self, path: str | Path | None = None) -> bool:
        """Load ``path`` (or ``out_dir/checkpoints/latest``); False if there is none."""
        p = Path(path) if path else latest_checkpoint(self.out / "checkpoints")
        if p is None:
            return False
        ck = load_checkpoint(p)
        t = self.cfg.train
        check_model(p, ck["raw"], {k: tuple(v.shape) for k, v in self.model.state_dict().items()},
                    self.model.config_dict())
        warning = check_batch(p, ck["state"], t.batch_size, t.grad_accum, self.world,
                              t.allow_batch_change)
        if warning and self.rank == 0:
            log.warning("%s", warning)
        self.dist.load_full_state(self.model, ck["raw"])
        self.dist.copy_full_state(self.ema.shadow, ck["ema"])
        self.dist.load_full_optimizer_state(
            self.opt, optimizer_state_from_tensors(ck["optimizer"],
                                                               ck["state"]["optimizer"]))
        if ck.get("task"):
            self.task.load_state_tensors(ck["task"])
        self.step = int(ck["state"]["step"])
        if self.rank == 0:
            log.info("resumed from %s at step %d", p, self.step)
            if dropped := truncate_log(self.out / "log.csv", self.step):
                log.info("log.csv: dropped %d rows of steps after %d (run again now)", dropped,
                         self.step)
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
            try:
                loss, gn = self.train_step()
            except (MemoryError, RuntimeError) as e:
                if not is_out_of_memory(e):
                    raise
                raise MemoryError(f"out of memory at training step {self.step + 1} with "
                                  f"train.batch_size {t.batch_size}: lower it (train.grad_accum "
                                  "keeps the samples per step) or set "
                                  "model.gradient_checkpointing") from e
            if not math.isfinite(loss):
                last = latest_checkpoint(self.out / "checkpoints")
                raise FloatingPointError(
                    f"loss became {loss} at step {self.step}; nothing was saved after "
                    f"{last.name if last else 'the start'}: lower train.lr or set "
                    "train.grad_clip, then run again (it resumes from there)")
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
        self.dist.barrier()  # no rank leaves (tearing down gloo) while rank 0 still writes
        return TrainResult(self.step, losses, ckpt)
