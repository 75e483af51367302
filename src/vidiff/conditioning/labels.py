"""Class labels (VDM's class-conditional models, with classifier-free guidance) and frame rate
(Make-A-Video's fps conditioning)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..registry import ENCODERS
from .base import ConditionEncoder

__all__ = ["ClassLabelEncoder", "FpsEncoder", "random_class_labels"]


def random_class_labels(num_classes: int, n: int, generator: torch.Generator | None = None
                        ) -> Tensor:
    """``n`` labels drawn uniformly from ``0..num_classes - 1``."""
    return torch.randint(0, num_classes, (n,), generator=generator)


def _check_labels(lab: Tensor, k: int, what: str) -> None:
    """Labels must be real classes ``0..k-1`` (``k`` is the null class of guidance)."""
    bad = lab[(lab < 0) | (lab >= k)]
    if bad.numel():
        raise ValueError(f"{what} must be in 0..{k - 1} (the model has {k} classes; {k} is its "
                         f"unconditional null class), got {int(bad[0])}")


@ENCODERS.register("class_labels")
class ClassLabelEncoder(ConditionEncoder):
    """Labels ``0..K-1`` of a model with ``num_classes = K``; label ``K`` is the null class of
    classifier-free guidance (Ho & Salimans 2021): dropped with probability ``drop_prob`` in
    training and used by the unconditional branch when sampling. With guidance on and no label
    given, labels are drawn uniformly (from the sampling generator, before the noise)."""

    guides = True

    def for_sampling(self, model: nn.Module, value: Any, num_videos: int, *,
                     device: torch.device, generator: torch.Generator | None,
                     guidance_scale: float, defaults: Any) -> tuple[Tensor, Tensor] | None:
        k = model.num_classes
        if value is None and guidance_scale:
            value = random_class_labels(k, num_videos, generator)
        if value is None:
            return None
        lab = torch.as_tensor(value, device=device).long().reshape(-1)
        _check_labels(lab, k, "class_labels")
        if lab.numel() == 1:
            lab = lab.expand(num_videos)
        elif lab.numel() != num_videos:
            raise ValueError(f"class_labels: {lab.numel()} labels for {num_videos} videos (give "
                             "one, or one per video)")
        return lab, torch.full_like(lab, k)

    def for_training(self, model: nn.Module, batch: dict, *, device: torch.device,
                     generator: torch.Generator, drop_prob: float) -> Tensor | None:
        if "label" not in batch:
            return None
        _check_labels(batch["label"], model.num_classes, "the dataset's labels (data.label)")
        lab = batch["label"].to(device)
        drop = torch.rand(lab.shape, generator=generator) < drop_prob
        return torch.where(drop.to(device), model.num_classes, lab)


@ENCODERS.register("fps")
class FpsEncoder(ConditionEncoder):
    """Frames per second ``(B,)`` (Make-A-Video): the batch's clip rate in training; the user's
    ``fps`` or the checkpoint's default when sampling (the same in both guidance branches)."""

    def for_sampling(self, model: nn.Module, value: Any, num_videos: int, *,
                     device: torch.device, generator: torch.Generator | None,
                     guidance_scale: float, defaults: Any) -> tuple[Tensor, Tensor] | None:
        fps = float(defaults.fps if value is None else value)
        if not 0 < fps <= 1000:
            raise ValueError(f"fps must be in (0, 1000], got {value}")
        f = torch.full((num_videos,), fps, device=device)
        return f, f

    def for_training(self, model: nn.Module, batch: dict, *, device: torch.device,
                     generator: torch.Generator, drop_prob: float) -> Tensor | None:
        return batch["fps"].to(device) if "fps" in batch else None
