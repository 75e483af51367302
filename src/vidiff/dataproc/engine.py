"""Where a step's per-row work runs: in this process, on a pool of local processes, or on a Ray
cluster through Ray Data. Every engine calls the same function on the same rows, so the table a
step writes is the same whichever ran it; results come back as rows finish (for the journal).

A row function takes one row (a dict) and returns the list of rows it becomes (``[]`` drops it,
several rows split it); it must be picklable: a module-level function or a
``functools.partial`` of one.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterator

from .deps import need
from .table import native

__all__ = ["ENGINES", "Engine", "default_workers"]

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")

RowFn = Callable[[dict], list]


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _pool_context():
    """``forkserver`` where it exists: workers fork from a clean server that imported vidiff
    once (fast, and no threads of the parent - Ray's, a trainer's - are forked); else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["vidiff.dataproc.table", "av", "numpy"])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - Windows


def _call(fn: RowFn, row: dict) -> list:
    """``fn(row)`` as plain Python values, with FFmpeg's own log lines (damaged frames, odd
    encodings) silenced: a step reports what is wrong with a file in its table."""
    import av.logging

    level = av.logging.get_level()
    av.logging.set_level(av.logging.PANIC)
    try:
        return native(fn(row))
    finally:
        av.logging.set_level(level)


def _ray_call(fn: RowFn, item: dict) -> dict:
    """One Ray Data row ``{"key", "row"}`` -> ``{"key", "rows"}``, rows as JSON text so that
    Ray's column typing cannot change a value."""
    rows = _call(fn, json.loads(item["row"]))
    return {"key": item["key"], "rows": json.dumps(rows, allow_nan=True)}


class Engine:
    """``kind``: ``"local"`` (``workers`` processes; 1 runs in this process) or ``"ray"`` (Ray
    Data on the cluster at ``ray_address``, or a local Ray instance of ``workers`` CPUs that is
    started here when none is running). Use as a context manager; the pool is kept for the
    engine's life, so the steps of a pipeline share it. ``progress`` shows a tqdm bar."""

    def __init__(self, kind: str = "local", workers: int | None = None, progress: bool = True,
                 ray_address: str | None = None):
        if kind not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {kind!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.kind, self.workers = kind, workers or default_workers()
        self.progress, self.ray_address = progress, ray_address
        self._pool, self._ray_started = None, False

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pool (and the Ray instance this engine started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._ray_started:
            import ray

            ray.shutdown()
            self._ray_started = False

    def map(self, fn: RowFn, items: list[tuple[int, dict]], desc: str = "",
            total: int | None = None) -> Iterator[tuple[int, list]]:
        """``(key, fn(row))`` for each ``(key, row)`` of ``items``, in the order they finish,
        with a progress bar over ``total`` rows (those not in ``items`` count as done)."""
        from tqdm.auto import tqdm

        total = len(items) if total is None else total
        bar = tqdm(total=total, initial=total - len(items), desc=desc, unit="clip",
                   disable=not self.progress or None, dynamic_ncols=True)
        try:
            if not items:
                return
            run = (self._ray if self.kind == "ray" else
                   self._inline if self.workers == 1 or len(items) == 1 else self._local)
            for key, rows in run(fn, items):
                bar.update(1)
                yield key, rows
        finally:
            bar.close()

    def _inline(self, fn: RowFn, items):
        for key, row in items:
            yield key, _call(fn, row)

    def _local(self, fn: RowFn, items):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=_pool_context())
        queue, running = list(reversed(items)), {}
        try:
            while queue or running:  # a bounded window of rows in flight
                while queue and len(running) < 4 * self.workers:
                    key, row = queue.pop()
                    running[self._pool.submit(_call, fn, row)] = key
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield running.pop(fut), fut.result()
        finally:
            for fut in running:
                fut.cancel()

    def _ray(self, fn: RowFn, items):
        ray = need("ray")
        data = need("ray.data")
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # one line a dataset otherwise
        if not ray.is_initialized():
            opts = ({"address": self.ray_address} if self.ray_address
                    else {"num_cpus": self.workers})
            ray.init(include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, **opts)
            self._ray_started = True
        ctx = data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = data.from_items([{"key": k, "row": json.dumps(native(r), allow_nan=True)}
                              for k, r in items], override_num_blocks=min(len(items), 2000))
        for out in ds.map(functools.partial(_ray_call, fn), num_cpus=1).iter_rows():
            yield int(out["key"]), json.loads(out["rows"])
