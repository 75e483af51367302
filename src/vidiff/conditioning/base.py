"""The condition-encoder interface (see :mod:`vidiff.conditioning`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ConditionEncoder", "model_conditions", "condition_encoders", "encoder_arguments",
           "encoder_value"]


def model_conditions(model: nn.Module) -> frozenset[str]:
    """The keyword conditions ``model`` declares (``ModelMixin.accepted_conditions``)."""
    return frozenset(model.accepted_conditions)


class ConditionEncoder:
    """Feeds the model keyword :attr:`key`.

    * :meth:`for_sampling` - from a pipeline's arguments: ``(cond, uncond)`` values for the
      conditional and the unconditional (classifier-free guidance) branch, or ``None`` when the
      user gave nothing and nothing is needed;
    * :meth:`for_training` - from a batch: the value for the loss (with condition dropout where
      the encoder supports guidance), or ``None`` when the batch has none.

    ``guides``: whether the encoder is a condition classifier-free guidance can guide towards.
    The keyword it feeds is the name it is registered under in :data:`~vidiff.registry.ENCODERS`.
    """

    guides: bool = False
    #: the pipeline arguments it reads (``None``: one, named like the keyword it feeds); with
    #: several, :meth:`for_sampling` gets them as a dict
    arguments: tuple[str, ...] | None = None

    @classmethod
    def videos_given(cls, value: Any) -> int | None:
        """How many videos ``value`` asks for when it gives one condition a video (a list of
        prompts), else ``None``; a pipeline called with the default ``num_videos=1`` makes that
        many."""
        return None

    @classmethod
    def build(cls, experiment: Any, device: torch.device,
              components: dict[str, Any] | None = None) -> "ConditionEncoder":
        """The encoder for a run or checkpoint of ``experiment`` (its recipe), e.g. loading the
        text encoder it names; ``components``: the models of the pipeline or run it serves (a
        trajectory autoencoder), by name."""
        return cls()

    def for_sampling(self, model: nn.Module, value: Any, num_videos: int, *,
                     device: torch.device, generator: torch.Generator | None,
                     guidance_scale: float, defaults: Any) -> tuple[Tensor, Tensor] | None:
        raise NotImplementedError

    def for_training(self, model: nn.Module, batch: dict, *, device: torch.device,
                     generator: torch.Generator, drop_prob: float) -> Tensor | None:
        raise NotImplementedError


def encoder_arguments(name: str, cls: type[ConditionEncoder]) -> tuple[str, ...]:
    """The pipeline arguments the :data:`~vidiff.registry.ENCODERS` entry ``name`` reads."""
    return cls.arguments or (name,)


def encoder_value(name: str, cls: type[ConditionEncoder], values: dict[str, Any]) -> Any:
    """What the entry ``name`` gets of a pipeline's condition arguments ``values``: the one it
    reads, or a dict of its :attr:`~ConditionEncoder.arguments`."""
    args = encoder_arguments(name, cls)
    return values.get(name) if args == (name,) else {a: values.get(a) for a in args}


def condition_encoders(model: nn.Module, experiment: Any, device: torch.device,
                       components: dict[str, Any] | None = None) -> dict[str, ConditionEncoder]:
    """The condition encoders feeding what ``model`` accepts, built for ``experiment`` (and the
    named ``components`` of its pipeline or run), by the keyword each feeds (registry order)."""
    from ..registry import ENCODERS

    accepted = model_conditions(model)
    return {name: cls.build(experiment, device, components) for name, cls in ENCODERS.items()
            if name in accepted}
