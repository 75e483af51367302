"""Non-finite numbers in sampling, turned into a one-line error that says at which step they
appeared and whether the checkpoint's weights are to blame (a checkpoint holding NaN weights
samples black videos otherwise)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["NonFiniteError", "FiniteWatch", "nonfinite_weights"]


class NonFiniteError(ValueError):
    """Sampling or decoding produced NaN or infinite values."""


def nonfinite_weights(model: nn.Module) -> str:
    """``""`` when every weight is finite, else e.g. ``"3 non-finite weights (first in
    conv_in.weight)"``."""
    bad = [(n, int((~torch.isfinite(p)).sum())) for n, p in model.state_dict().items()
           if p.is_floating_point() and not torch.isfinite(p).all()]
    if not bad:
        return ""
    return f"{sum(c for _, c in bad)} non-finite weights (first in {bad[0][0]})"


class FiniteWatch:
    """A sampler callback that records the first step whose sample is not finite, then passes
    the call on to the user's ``callback``."""

    def __init__(self, callback: Callable | None, num_steps: int):
        self.callback, self.num_steps = callback, num_steps
        self._finite: list[Tensor] = []  # one device flag per step: no host sync while sampling
        self._times: list[Tensor] = []

    def __call__(self, step: int, t: Tensor, z: Tensor, x0_hat: Tensor) -> None:
        self._finite.append(torch.isfinite(z).all())
        self._times.append(t.max())
        if self.callback is not None:
            self.callback(step, t, z, x0_hat)

    @property
    def first(self) -> tuple[int, float] | None:
        """``(step, t)`` of the first step whose sample is not finite, or ``None``."""
        if not self._finite:
            return None
        bad = (~torch.stack(self._finite)).nonzero()
        if not len(bad):
            return None
        k = int(bad[0, 0])
        return k, float(self._times[k])

    def check(self, models: dict[str, nn.Module | None]) -> None:
        """Raise :class:`NonFiniteError` if a step went non-finite, naming the step and any
        component whose weights are not finite."""
        if self.first is None:
            return
        step, t = self.first
        notes = [f"the {name} holds {w}" for name, m in models.items()
                 if m is not None and (w := nonfinite_weights(m))]
        raise NonFiniteError(
            f"sampling produced NaN/inf from step {step + 1} of {self.num_steps} (t = {t:.3f}); "
            + ("; ".join(notes) + " - the checkpoint is damaged" if notes else
               "the weights are finite: try another sampler, fewer steps' noise (eta) or "
               "lower guidance"))
