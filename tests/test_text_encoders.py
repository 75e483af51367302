"""Frozen text encoders: offline loading (no request ever attempted), the shared protocol on
MiniLM, a tiny CLIP text model and a tiny T5 encoder built here, and the embedding cache."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from vidiff.conditioning.text_encoders import (HFTextEncoder, MiniLMTextEncoder,
                                               load_text_encoder)

WORDS = ["a", "red", "blue", "circle", "square", "moving", "left", "right", "and"]


def _word_tokenizer(folder, model_max_length=16):
    """A word-level fast tokenizer saved as Hugging Face files (no download, no sentencepiece)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="[EOS]", model_max_length=model_max_length)
    fast.save_pretrained(folder)
    return len(vocab)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPTextConfig, CLIPTextModel

    d = tmp_path_factory.mktemp("clip")
    n = _word_tokenizer(d)
    torch.manual_seed(0)
    CLIPTextModel(CLIPTextConfig(vocab_size=n, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=4,
                                 max_position_embeddings=16, pad_token_id=0, eos_token_id=2,
                                 bos_token_id=2)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    from transformers import T5Config, T5EncoderModel

    d = tmp_path_factory.mktemp("t5")
    n = _word_tokenizer(d)
    torch.manual_seed(0)
    T5EncoderModel(T5Config(vocab_size=n, d_model=24, d_kv=8, d_ff=48, num_layers=2,
                            num_heads=3, pad_token_id=0, eos_token_id=2)).save_pretrained(d)
    return d


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield calls
    assert not calls


@pytest.mark.parametrize("which", ["minilm", "clip", "t5"])
def test_encoders_load_and_encode_offline(which, tiny_clip, tiny_t5, no_network, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    enc = {"minilm": lambda: MiniLMTextEncoder(max_length=12),
           "clip": lambda: HFTextEncoder(tiny_clip, max_length=12),
           "t5": lambda: HFTextEncoder(tiny_t5, max_length=12)}[which]()
    out = enc.encode(["a red circle moving left", "a blue square", ""])
    D = {"minilm": 384, "clip": 32, "t5": 24}[which]
    assert enc.dim == D
    assert out.tokens.shape == (3, 12, D) and out.pooled.shape == (3, D)
    assert out.mask.dtype == torch.bool and out.mask.shape == (3, 12)
    assert out.mask[0].sum() > out.mask[1].sum()  # the longer prompt has more real tokens
    assert torch.isfinite(out.tokens).all()
    assert not torch.allclose(out.tokens[0], out.tokens[1])
    assert all(not p.requires_grad for p in enc.model.parameters())  # frozen
    assert "HF_HUB_OFFLINE" not in os.environ  # set while loading only, then restored



def test_minilm_pooled_is_the_masked_mean(no_network):
    enc = MiniLMTextEncoder(max_length=16)
    out = enc.encode(["a red circle moving left"])
    m = out.mask[0]
    assert torch.allclose(out.pooled[0], out.tokens[0][m].mean(0), atol=2e-3)  # (float16)


def test_cache_returns_what_encoding_gives(tiny_clip):
    enc = HFTextEncoder(tiny_clip, max_length=10)
    first = enc.encode(["a red circle", "a blue square"])
    assert (enc.hits, enc.misses) == (0, 2)
    again = enc.encode(["a blue square", "a red circle", "a red square", "a red circle"])
    assert (enc.hits, enc.misses) == (3, 3)  # one new prompt; repeats within a call count once
    fresh = enc._encode(["a blue square", "a red circle", "a red square"])
    assert torch.equal(again.tokens[0], first.tokens[1])
    assert torch.equal(again.tokens[1], first.tokens[0])
    assert torch.equal(again.tokens[3], first.tokens[0])
    assert torch.equal(again.mask[:3], fresh.mask)
    for k in ("tokens", "pooled"):  # the cache keeps float16: exactly fresh, rounded so
        assert torch.equal(getattr(again, k)[:3], getattr(fresh, k).half().float())
    one = sum(t.numel() * t.element_size() for t in enc._cache["a red circle"])
    enc.cache_bytes = 2 * one  # the oldest prompts leave first; results do not change
    third = enc.encode(["a red", "a blue", "a red circle"])
    assert len(enc._cache) == 2 and torch.equal(third.tokens[2], first.tokens[0])
    assert enc._cached_bytes == 2 * one


def test_bad_inputs(tmp_path, tiny_clip):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        HFTextEncoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="cannot load it offline"):
        HFTextEncoder(tmp_path)  # an empty folder
    with pytest.raises(TypeError, match="prompts must be strings"):
        HFTextEncoder(tiny_clip, max_length=8).encode(["ok", 3])
    with pytest.raises(ValueError, match="text encoder 'nope'"):
        load_text_encoder({"type": "nope"})
    with pytest.raises(ValueError, match="text_encoder:"):
        load_text_encoder({"type": "hf", "path": str(tiny_clip), "colour": 3})
    with pytest.raises(ValueError, match="max_length must be an integer >= 1, got 0"):
        HFTextEncoder(tiny_clip, max_length=0)
    with pytest.raises(ValueError, match="max_length is 600 but .* takes at most 16 tokens"):
        HFTextEncoder(tiny_clip, max_length=600)


def test_loaded_once_per_process(tiny_clip):
    a = load_text_encoder({"type": "hf", "path": str(tiny_clip), "max_length": 8})
    b = load_text_encoder({"type": "hf", "path": str(tiny_clip), "max_length": 8})
    assert a is b
