"""Which parameters a run trains: everything, or those matching name patterns.

Make-A-Video's second stage (Singer et al. 2022, section 3.4) trains only the new temporal
layers of a model inflated from a text-to-image model; a recipe says so with
``train.trainable: [TemporalConv, TemporalAttention, "fps_embed.*"]``: a pattern matches a
parameter's dotted name, or the class name of a module that holds it. Parameters that match no
pattern are frozen (``requires_grad = False``) and stay out of the optimiser, so they stay
bit-identical.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

__all__ = ["apply_trainable"]


def apply_trainable(model: nn.Module, patterns: list[str] | tuple[str, ...] | None) -> list[str]:
    """Freeze every parameter of ``model`` matched by none of ``patterns`` (shell-style globs,
    ``fnmatch``: ``*`` matches dots too), each tried on the parameter's dotted name and on the
    class names of the modules holding it. ``None`` changes nothing (what a task froze stays
    frozen).

    Returns:
        the names of the parameters left trainable.
    Raises:
        ValueError: a pattern that matches no parameter (a typo would otherwise silently train
            nothing), or patterns that leave nothing to train.
    """
    names = [n for n, _ in model.named_parameters()]
    if patterns is None:  # as the model is (a task may have frozen a part of it itself)
        return [n for n, p in model.named_parameters() if p.requires_grad]
    modules = {name: type(m).__name__ for name, m in model.named_modules()}

    def keys(n: str) -> list[str]:  # the name, then the classes of the modules holding it
        parts = n.split(".")
        return [n] + [modules[".".join(parts[:i])] for i in range(1, len(parts))
                      if ".".join(parts[:i]) in modules]

    if not patterns:
        raise ValueError("train.trainable: an empty list leaves nothing to train (null trains "
                         "every parameter)")
    owners = {n: keys(n) for n in names}
    for pat in patterns:
        if not any(fnmatchcase(k, pat) for n in names for k in owners[n]):
            raise ValueError(f"train.trainable: {pat!r} matches no parameter or module class "
                             f"of {type(model).__name__} (e.g. {names[0] if names else 'none'})")
    keep = {n for n in names if any(fnmatchcase(k, pat) for k in owners[n] for pat in patterns)}
    for n, p in model.named_parameters():  # what a task froze itself stays frozen
        p.requires_grad_(p.requires_grad and n in keep)
    return [n for n, p in model.named_parameters() if p.requires_grad]
