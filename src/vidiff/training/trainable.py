"""Which parameters a run trains: everything, or those matching name patterns.

Make-A-Video's second stage (Singer et al. 2022, section 3.4) trains only the new temporal
layers of a model inflated from a text-to-image model; a recipe says so with
``train.trainable: ["*temporal*", "fps_embed.*"]``. Parameters that match no pattern are frozen
(``requires_grad = False``) and stay out of the optimiser, so they stay bit-identical.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

__all__ = ["apply_trainable"]


def apply_trainable(model: nn.Module, patterns: list[str] | tuple[str, ...] | None) -> list[str]:
    """Freeze every parameter of ``model`` whose dotted name matches none of ``patterns``
    (shell-style globs, ``fnmatch``: ``*`` matches dots too). ``None`` trains everything.

    Returns:
        the names of the parameters left trainable.
    Raises:
        ValueError: a pattern that matches no parameter (a typo would otherwise silently train
            nothing), or patterns that leave nothing to train.
    """
    names = [n for n, _ in model.named_parameters()]
    if patterns is None:
        for p in model.parameters():
            p.requires_grad_(True)
        return names
    for pat in patterns:
        if not any(fnmatchcase(n, pat) for n in names):
            raise ValueError(f"train.trainable: {pat!r} matches no parameter of "
                             f"{type(model).__name__} (e.g. {names[0] if names else 'none'})")
    keep = [n for n in names if any(fnmatchcase(n, pat) for pat in patterns)]
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    return keep
