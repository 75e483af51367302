"""Varied captions and their held-out parts; prompt adherence measured on clips whose content is
known."""

from __future__ import annotations

import numpy as np
import pytest

from vidiff.data import MovingShapesConfig, generate_clip
from vidiff.data.captions import (COLOR_WORDS, DIRECTION_WORDS, HELD_OUT_COMBOS, HELD_OUT_TEMPLATES,
                                  HELD_OUT_WORDS, SHAPE_WORDS, describe, parse_objects, prompt_set)
from vidiff.data.datasets import MovingShapesDataset
from vidiff.evaluation.adherence import mean_speed, prompt_adherence


def test_describe_round_trips_through_parse_and_varies():
    rng = np.random.default_rng(0)
    texts = set()
    for _ in range(300):
        n = int(rng.integers(1, 3))
        colors = list(rng.choice(list(COLOR_WORDS), n, replace=False))
        shapes = [str(rng.choice(list(SHAPE_WORDS))) for _ in range(n)]
        dirs = [str(rng.choice(list(DIRECTION_WORDS))) for _ in range(n)]
        held = bool(rng.integers(2))
        text = describe(colors, shapes, dirs, rng, held_out=held)
        assert parse_objects(text) == list(zip(colors, shapes, dirs)), text
        image = describe(colors, shapes, None, rng)
        assert parse_objects(image) == [(c, s, None) for c, s in zip(colors, shapes)], image
        assert not any(w in image for w in ("moving", "moves", "drifting", "sliding"))
        texts.add(text)
    assert len(texts) > 250  # many wordings, not one template
    assert parse_objects("a red circle moving up-left and a blue square moving down") == [
        ("red", "circle", "up-left"), ("blue", "square", "down")]  # the one-template captions


def test_training_captions_never_use_held_out_wordings_or_combinations():
    cfg = MovingShapesConfig(size=32, num_frames=4, max_objects=3, captions="varied",
                             held_out_combos=HELD_OUT_COMBOS)
    for i in range(300):
        clip = generate_clip(cfg, i)
        for c, s in zip(clip.colors, clip.shapes):
            assert f"{c} {s}" not in HELD_OUT_COMBOS
        words = clip.caption
        assert not any(f" {w} " in f" {words} " for w in HELD_OUT_WORDS), words
        # the held-out templates are the only ones with "heading" / "single"
        assert {w for t in HELD_OUT_TEMPLATES for w in ("heading", "single") if w in t} == {
            "heading", "single"}
        assert "heading" not in words.split() and "single" not in words.split(), words
    # the same clip with and without held-out combinations, where none is drawn
    plain = MovingShapesConfig(size=32, num_frames=4)
    assert np.array_equal(generate_clip(plain, 5).video,
                          generate_clip(MovingShapesConfig(size=32, num_frames=4,
                                                           captions="varied"), 5).video)
    with pytest.raises(ValueError, match="captions must be"):
        generate_clip(MovingShapesConfig(captions="fancy"), 0)
    with pytest.raises(ValueError, match="leave no shape"):
        generate_clip(MovingShapesConfig(colors=("red",), max_objects=1, held_out_combos=(
            "red circle", "red square", "red triangle")), 0)


def test_image_items_are_frames_with_captions_without_motion():
    ds = MovingShapesDataset(MovingShapesConfig(size=16, num_frames=4, captions="varied"),
                             images=True)
    item = ds[3]
    assert item["video"].shape == (3, 16, 16) and "fps" not in item
    assert all(d is None for _, _, d in parse_objects(item["caption"])) and \
        parse_objects(item["caption"])
    assert ds.clip_shape == (1, 16)


def test_prompt_set_and_adherence_on_known_clips():
    prompts = prompt_set(16, seed=0, motion=True)
    assert len(prompts) == 16 and all(len(parse_objects(p)) == 1 for p in prompts)
    assert sum(f"{c} {s}" in HELD_OUT_COMBOS for p in prompts
               for c, s, _ in parse_objects(p)) == 4
    cfg = MovingShapesConfig(size=32, num_frames=8, min_objects=1, max_objects=1,
                             min_speed=2 / 64)
    clips = [generate_clip(cfg, i) for i in range(16)]
    truth = [clip.caption for clip in clips]  # a real clip adheres to its own caption
    rep = prompt_adherence([c.video for c in clips], truth)
    assert rep["color"] == 1.0 and rep["shape"] >= 0.85 and rep["direction"] >= 0.75
    wrong = [p.replace(c.colors[0], "cyan" if c.colors[0] != "cyan" else "red", 1)
             for p, c in zip(truth, clips)]
    assert prompt_adherence([c.video for c in clips], wrong)["color"] == 0.0
    blank = [np.zeros_like(clips[0].video)] * 2
    rep = prompt_adherence(blank, truth[:2], motion=False)
    assert rep["color"] == 0.0 and rep["direction"] is None
    assert mean_speed(blank) is None
    speed = mean_speed([c.video for c in clips])
    assert speed > 1.0  # at least 2/64 of the canvas a frame, minus bounces
    with pytest.raises(ValueError, match="names no Moving Shapes object"):
        prompt_adherence(blank[:1], ["a dog"])
