"""Where a step's per-row work runs: in this process, on a pool of local processes, or on a Ray
cluster through Ray Data. Every engine calls the same function on the same rows, so the table a
step writes is the same whichever ran it; results come back as rows finish (for the journal).

A row function takes one row (a dict) and returns the list of rows it becomes (``[]`` drops it,
several rows split it); it must be picklable: a module-level function or a
``functools.partial`` of one.

A local worker process that dies (a segfault in a decoder, the OOM killer) breaks the pool:
the pool is restarted and the rows that were in flight are retried one at a time, alone in
the pool; a row whose worker dies again is returned marked ``ok=False``, reason
``worker_crashed``. So with several workers a row can be started more than once (an innocent
row in flight beside the culprit is redone), but its result is recorded once.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from .deps import need
from .table import bad_row, native

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

    def _restart_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:  # a broken pool: reap what is left of it
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=_pool_context())
        return self._pool

    def _local(self, fn: RowFn, items):
        pool = self._pool or self._restart_pool()
        queue, running, rows = list(reversed(items)), {}, dict(items)
        suspects: list[int] = []  # in flight when a worker died: retried one at a time
        try:
            while queue or running or suspects:
                if suspects and not running:
                    key = suspects.pop()
                    try:
                        yield key, pool.submit(_call, fn, rows[key]).result()
                    except BrokenProcessPool as e:
                        pool = self._restart_pool()
                        log.warning("%s: a worker died on it again: marked bad", rows[key].get(
                            "path", key))
                        yield key, [bad_row(rows[key], "engine", "worker_crashed",
                                            f"the worker process died twice on it ({e})")]
                    continue
                while queue and not suspects and len(running) < 4 * self.workers:
                    key, row = queue.pop()  # a bounded window of rows in flight
                    try:
                        running[pool.submit(_call, fn, row)] = key
                    except BrokenProcessPool:  # broke while idle: the row goes back
                        queue.append((key, row))
                        if not running:
                            pool = self._restart_pool()
                        break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    key = running.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        suspects.append(key)
                        continue
                    yield key, result
                if suspects and not running:
                    log.warning("a worker process died: retrying the %d row(s) in flight one "
                                "at a time", len(suspects))
                    pool = self._restart_pool()
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
