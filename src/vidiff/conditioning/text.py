"""Prompts as cross-attention context: the text condition of text-to-image and text-to-video
models (Make-A-Video, LaMD's text-image-to-video), with classifier-free guidance towards the
prompt and away from a negative prompt."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..registry import ENCODERS
from .base import ConditionEncoder
from .text_encoders import TextEncoder, load_text_encoder

__all__ = ["TextConditionEncoder", "DEFAULT_TEXT_ENCODER"]

#: the text encoder of a recipe that names none
DEFAULT_TEXT_ENCODER = {"type": "minilm"}


def _prompts(value: Any, n: int, what: str) -> list[str]:
    """``n`` prompts from ``None`` (the empty prompt), a string, or a list of one or ``n``."""
    if value is None:
        return [""] * n
    if isinstance(value, str):
        return [value] * n
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a string or a non-empty list of strings, got "
                         f"{value!r}")
    value = list(value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise ValueError(f"{what}: {len(value)} prompts for {n} videos (give one, or one per "
                         "video)")
    return value


@ENCODERS.register("context")
class TextConditionEncoder(ConditionEncoder):
    """Feeds ``context``: the token embeddings ``(B, L, D)`` of the recipe's text encoder
    (``text_encoder:``, default all-MiniLM-L6-v2).

    Training: the batch's ``caption`` list; a missing caption, ``data.drop_captions`` and text
    dropout (probability ``diffusion.cond_drop_prob``) all give the empty prompt, the null
    condition of classifier-free guidance (Ho & Salimans 2021), as Stable Diffusion does.
    Sampling: ``prompt`` for the conditional branch, ``negative_prompt`` (default the empty
    prompt) for the unconditional one: ``x~ = (1 + w) x(prompt) - w x(negative_prompt)``.

    Raises:
        ValueError: the encoder's width differs from the model's ``context_dim``; a prompt
            list whose length is neither 1 nor the number of videos.
    """

    guides = True
    arguments = ("prompt", "negative_prompt")

    def __init__(self, text_encoder: TextEncoder, drop_captions: bool = False):
        self.text_encoder, self.drop_captions = text_encoder, drop_captions

    @classmethod
    def build(cls, experiment: Any, device: torch.device,
              components: dict[str, Any] | None = None) -> "TextConditionEncoder":
        spec = getattr(experiment, "text_encoder", None) or DEFAULT_TEXT_ENCODER
        return cls(load_text_encoder(spec, str(device)),
                   bool(getattr(experiment.data, "drop_captions", False)))

    def _context(self, model: nn.Module, prompts: list[str], device: torch.device) -> Tensor:
        want = getattr(model.config, "context_dim", None)
        if want is not None and want != self.text_encoder.dim:
            raise ValueError(f"the model's context_dim is {want} but its text encoder gives "
                             f"{self.text_encoder.dim}-wide tokens")
        return self.text_encoder.encode(prompts).tokens.to(device)

    @classmethod
    def videos_given(cls, value: Any) -> int | None:
        prompt = (value or {}).get("prompt")
        return len(prompt) if isinstance(prompt, (list, tuple)) and prompt else None

    def for_sampling(self, model: nn.Module, value: Any, num_videos: int, *,
                     device: torch.device, generator: torch.Generator | None,
                     guidance_scale: float, defaults: Any) -> tuple[Tensor, Tensor] | None:
        value = value or {}
        prompt, negative = value.get("prompt"), value.get("negative_prompt")
        if prompt is None and negative is not None:
            raise ValueError("negative_prompt needs a prompt")
        cond = self._context(model, _prompts(prompt, num_videos, "prompt"), device)
        uncond = self._context(model, _prompts(negative, num_videos, "negative_prompt"), device)
        return cond, uncond

    def for_training(self, model: nn.Module, batch: dict, *, device: torch.device,
                     generator: torch.Generator, drop_prob: float) -> Tensor | None:
        n = len(batch["video"] if "video" in batch else batch["latents"])
        caps = [""] * n if self.drop_captions else list(batch.get("caption") or [""] * n)
        drop = torch.rand(n, generator=generator) < drop_prob
        caps = ["" if d else c for c, d in zip(caps, drop.tolist())]
        return self._context(model, caps, device)
