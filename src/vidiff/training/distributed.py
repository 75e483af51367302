"""Data-parallel training through ``torchrun``: DDP (every rank holds the whole model) or FSDP2
(``torch.distributed.fsdp.fully_shard``: parameters, gradients and optimiser state sharded over
ranks, for models larger than one device). Gloo on CPU, NCCL on GPU.

The trainer only calls this module's :class:`Distributed`; with one process every method is the
plain single-device operation. Checkpoints always hold full (unsharded) tensors, so a run saved
with FSDP on N ranks resumes with DDP, FSDP on M ranks or one process.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor

from ..devices import resolve_device

__all__ = ["Distributed", "STRATEGIES"]

STRATEGIES = ("ddp", "fsdp")


def _full(v: Any) -> Any:
    """A DTensor gathered to its full value (a collective); anything else unchanged."""
    return v.full_tensor() if isinstance(v, DTensor) else v


def _callable_parts(module: nn.Module) -> list[nn.Module]:
    """``module`` if it has a ``forward``, else the outermost descendants that do (FSDP2 hooks
    ``forward``, so a ``ModuleDict`` block is sharded as the group of modules it holds)."""
    if type(module).forward is not nn.Module.forward:
        return [module]
    return [m for child in module.children() for m in _callable_parts(child)]


def _like(full: Tensor, ref: Any) -> Tensor:
    """``full`` laid out like ``ref`` (sharded when ``ref`` is a DTensor)."""
    if isinstance(ref, DTensor):
        return distribute_tensor(full.to(ref.dtype), ref.device_mesh, ref.placements)
    return full


class Distributed:
    """The process group of a ``torchrun`` launch (``WORLD_SIZE`` > 1), or one process.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (each rank takes ``cuda:LOCAL_RANK``).
        strategy: ``"ddp"`` or ``"fsdp"`` (FSDP2: every top-level ``ModuleList`` entry of the
            model is a shard unit, a ``ModuleDict`` block as one group of the modules it holds,
            then the rest of the model; every rank starts from rank 0's weights).
    Raises:
        ValueError: an unknown strategy.
    """

    def __init__(self, device: str = "cpu", strategy: str = "ddp"):
        if strategy not in STRATEGIES:
            raise ValueError(f"train.distributed must be one of {STRATEGIES}, got {strategy!r}")
        resolve_device(device)  # a device this torch cannot use: one line, before any work
        self.strategy = strategy
        self.enabled = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        self.rank = dist.get_rank() if self.enabled else 0
        self.world = dist.get_world_size() if self.enabled else 1
        if device.startswith("cuda") and self.enabled:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device(device)
        self.sharded = self.enabled and strategy == "fsdp"

    # -- the model --------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the loop calls: ``model`` itself, a DDP wrapper, or ``model`` sharded in
        place by FSDP2 (create the optimiser after this)."""
        if not self.enabled:
            return model
        if self.strategy == "ddp":
            ids = [self.device.index] if self.device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(model, device_ids=ids)
        with torch.no_grad():  # start every rank from rank 0's weights, as DDP does
            for t in [*model.parameters(), *model.buffers()]:
                dist.broadcast(t.data, 0)
        mesh = init_device_mesh(self.device.type, (self.world,))
        for child in model.children():
            if isinstance(child, nn.ModuleList):
                for unit in child:
                    parts = _callable_parts(unit)
                    if parts:  # one communication group per block
                        fully_shard(parts if len(parts) > 1 else parts[0], mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model

    @contextlib.contextmanager
    def no_sync(self, net: nn.Module) -> Iterator[None]:
        """Accumulate gradients locally (every micro-batch but the last of a step)."""
        if isinstance(net, nn.parallel.DistributedDataParallel):
            with net.no_sync():
                yield
        elif self.sharded:
            net.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                net.set_requires_gradient_sync(True)
        else:
            yield

    def clip_grad_norm(self, model: nn.Module, max_norm: float | None) -> float:
        """Clip to ``max_norm`` (when set) and return the total gradient norm (over all ranks'
        shards)."""
        params = [p for p in model.parameters() if p.grad is not None]
        if max_norm:
            gn = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            gn = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad)
                                                       for p in params]))
        return float(_full(gn))

    def mean(self, value: float) -> float:
        """The mean of a scalar over ranks."""
        if not self.enabled:
            return value
        t = torch.tensor([value], device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    # -- full state for checkpoints (collectives under FSDP: every rank calls them) ----------
    def full_state(self, state: nn.Module | dict[str, Tensor]) -> dict[str, Tensor]:
        """A module's (or a dict's) tensors, unsharded."""
        sd = state.state_dict() if isinstance(state, nn.Module) else state
        return {k: _full(v) for k, v in sd.items()}

    def full_optimizer_state(self, opt: torch.optim.Optimizer) -> dict:
        """The optimiser's state dict (parameters by index) with unsharded tensors."""
        sd = opt.state_dict()
        return {"state": {pid: {k: _full(v) for k, v in st.items()}
                          for pid, st in sd["state"].items()},
                "param_groups": sd["param_groups"]}

    def load_full_state(self, model: nn.Module, full: dict[str, Tensor]) -> None:
        own = model.state_dict()
        model.load_state_dict({k: _like(v, own[k]) if k in own else v for k, v in full.items()})

    def copy_full_state(self, target: dict[str, Tensor], full: dict[str, Tensor]) -> None:
        for k, v in full.items():
            target[k].copy_(_like(v, target[k]))

    def load_full_optimizer_state(self, opt: torch.optim.Optimizer,
                                  state: dict) -> None:
        """Load :meth:`full_optimizer_state`'s output, re-sharding per-parameter tensors."""
        params = [p for g in opt.param_groups for p in g["params"]]
        out = {}
        for pid, st in state["state"].items():
            p = params[int(pid)]
            out[int(pid)] = {k: _like(v, p) if isinstance(v, Tensor) and v.shape == p.shape
                             else v for k, v in st.items()}
        opt.load_state_dict({"state": out, "param_groups": state["param_groups"]})
