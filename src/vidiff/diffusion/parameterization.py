"""Parameterisations of the denoiser output: ``eps``, ``v``, ``x0`` and ``flow``.

With ``z = alpha x + sigma eps`` (``alpha^2 + sigma^2 = 1``) and ``v = alpha eps - sigma x``:

* ``x = alpha z - sigma v``, ``eps = sigma z + alpha v``
* ``x = (z - sigma eps) / alpha``, ``eps = (z - alpha x) / sigma``

``flow`` is the velocity ``u = eps - x`` of rectified flow's straight path
(``alpha = 1 - t``, ``sigma = t``; Liu et al. 2023, SD3): ``x = z - sigma u``,
``eps = z + alpha u``. It needs a schedule with ``alpha + sigma = 1`` (a recipe with
``prediction: flow`` and another schedule is refused when it loads).

``alpha`` and ``sigma`` are per-sample ``(B,)`` or per-frame ``(B, F)`` and are broadcast to the
data by :func:`expand_like`.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["PREDICTIONS", "expand_like", "target_of", "to_x0", "to_eps", "x0_from_eps",
           "eps_from_x0", "v_from"]

PREDICTIONS = ("eps", "v", "x0", "flow")
_EPS = 1e-8


def expand_like(a: Tensor, x: Tensor) -> Tensor:
    """Broadcast a per-sample ``(B,)`` or per-frame ``(B, F)`` coefficient to ``x``.

    ``x`` is ``(B, ...)`` for ``(B,)``; for ``(B, F)`` it must be a video ``(B, C, F, H, W)``.
    """
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return a.reshape(a.shape[0], *([1] * (x.ndim - 1)))
    if a.ndim == 2:
        if x.ndim != 5 or x.shape[2] != a.shape[1]:
            raise ValueError(f"per-frame coefficient {tuple(a.shape)} needs a video (B, C, F, H, W) "
                             f"with F={a.shape[1]}, got {tuple(x.shape)}")
        return a.reshape(a.shape[0], 1, a.shape[1], 1, 1)
    raise ValueError(f"coefficient must be (B,) or (B, F), got {tuple(a.shape)}")


def _check(kind: str) -> None:
    if kind not in PREDICTIONS:
        raise ValueError(f"unknown prediction type {kind!r}; choose one of {PREDICTIONS}")


def x0_from_eps(z: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    a, s = expand_like(alpha, z), expand_like(sigma, z)
    return (z - s * eps) / a.clamp_min(_EPS)


def eps_from_x0(z: Tensor, x0: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    a, s = expand_like(alpha, z), expand_like(sigma, z)
    return (z - a * x0) / s.clamp_min(_EPS)


def v_from(x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return expand_like(alpha, x0) * eps - expand_like(sigma, x0) * x0


def target_of(kind: str, x0: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """The regression target of a parameterisation."""
    _check(kind)
    if kind == "flow":
        return eps - x0
    if kind == "v":
        return v_from(x0, eps, alpha, sigma)
    return eps if kind == "eps" else x0


def to_x0(kind: str, out: Tensor, z: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Turn a network output of parameterisation ``kind`` into ``x0_hat``."""
    _check(kind)
    if kind == "flow":
        return z - expand_like(sigma, z) * out
    if kind == "v":
        return expand_like(alpha, z) * z - expand_like(sigma, z) * out
    return out if kind == "x0" else x0_from_eps(z, out, alpha, sigma)


def to_eps(kind: str, out: Tensor, z: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Turn a network output of parameterisation ``kind`` into ``eps_hat``."""
    _check(kind)
    if kind == "flow":
        return z + expand_like(alpha, z) * out
    if kind == "v":
        return expand_like(sigma, z) * z + expand_like(alpha, z) * out
    return out if kind == "eps" else eps_from_x0(z, out, alpha, sigma)
