"""The optional dependencies of the data tools, imported when first used, so that ``import
vidiff`` stays light; a missing one is a one-line error naming the extra that installs it."""

from __future__ import annotations

import importlib

__all__ = ["MissingExtra", "need", "pandas", "cv2"]

#: module -> (pip package, vidiff extra)
_EXTRAS = {"pandas": ("pandas", "data"), "pyarrow": ("pyarrow", "data"),
           "cv2": ("opencv-python", "data"), "scenedetect": ("scenedetect", "data"),
           "ray": ("ray[data]", "ray")}


class MissingExtra(ImportError):
    """An optional dependency of ``vidiff data`` is not installed."""


def need(module: str):
    """Import ``module`` (``pandas``, ``cv2``, ``scenedetect``, ``ray``, ``pyarrow``) or raise
    :class:`MissingExtra`: ``vidiff data needs scenedetect: pip install vidiff[data]``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package, extra = _EXTRAS.get(module.split(".")[0], (module, "data"))
        raise MissingExtra(f"vidiff data needs {package} ({e}): pip install "
                           f"vidiff[{extra}]") from e


def pandas():
    """The pandas module."""
    return need("pandas")


def cv2():
    """OpenCV, single-threaded: the data tools parallelise over clips (one process a core), and
    one thread makes the results bit-identical whichever engine runs them."""
    mod = need("cv2")
    if mod.getNumThreads() != 1:
        mod.setNumThreads(1)
    return mod
