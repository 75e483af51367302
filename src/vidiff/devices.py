"""Devices by name, checked where they enter (a recipe's ``train.device``, ``--device``,
``map_location``): a device this torch cannot use is a one-line error, not a traceback from
deep inside a load or a forward pass; and running out of a device's memory, told as what was
asked and about what fits."""

from __future__ import annotations

import re
from pathlib import Path

import torch

__all__ = ["resolve_device", "is_out_of_memory", "out_of_memory_error", "check_fits"]


def resolve_device(name: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` ... as a :class:`torch.device`.

    Raises:
        ValueError: not a device name, or a device this machine's torch cannot use (a CUDA
            device on a CPU-only build, an index past the GPUs present).
    """
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {name!r} is not a device name (cpu, cuda, cuda:N, mps)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(name)!r}: this torch ({torch.__version__}) has no "
                             "usable CUDA; use cpu (or install a CUDA build of torch)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(name)!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(name)!r}: MPS is not available on this machine; use cpu")
    return dev


def _available_bytes() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"MemAvailable:\s+(\d+) kB", text)
    return int(m.group(1)) * 1024 if m else None


def check_fits(nbytes: int, num_videos: int, frames: int, shape: tuple[int, ...]) -> None:
    """Raise the one-line :class:`MemoryError` before the work when its output alone
    (``nbytes``) exceeds this machine's available memory, where the kernel would otherwise kill
    the process without a word (host memory only; unknown elsewhere)."""
    avail = _available_bytes()
    if avail is not None and nbytes > avail:
        raise out_of_memory_error(MemoryError(f"you tried to allocate {nbytes} bytes"),
                                  num_videos, frames, shape)


def out_of_memory_error(err: BaseException, num_videos: int, frames: int,
                        shape: tuple[int, ...]) -> MemoryError:
    """A one-line :class:`MemoryError` for sampling ``num_videos`` clips of ``frames`` pixel
    frames (model-space ``shape``): what was asked, and about how many frames fit."""
    asked = re.search(r"allocate (\d+) bytes", str(err))
    avail = _available_bytes()
    fit = ""
    if asked and avail:
        frames_fit = int(frames * avail / max(int(asked.group(1)), 1))
        fit = f"; at most about {max(frames_fit, 1)} frames per batch fit here"
    return MemoryError(f"out of memory sampling {num_videos} videos of {frames} frames (model "
                       f"space {tuple(shape)}){fit}: ask fewer frames or videos, or use `vidiff "
                       "long`, which streams videos of any length")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is torch running out of host or device memory."""
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))
