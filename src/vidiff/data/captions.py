"""Captions worth learning from: varied wordings of Moving Shapes clips and frames, and their
inverse (a caption back to its objects) for measuring adherence.

A caption names each object's colour and shape (and, for a clip, its direction of motion) with
one of several templates and synonyms. A fixed set of *held-out* colour-shape combinations and
wordings never appears in training (Moving Shapes re-draws a held-out combination, and training
captions never use a held-out template or synonym), so adherence can be measured on what the
model has never been told.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["COLOR_WORDS", "SHAPE_WORDS", "DIRECTION_WORDS", "VIDEO_TEMPLATES",
           "IMAGE_TEMPLATES", "HELD_OUT_COMBOS", "HELD_OUT_WORDS", "HELD_OUT_TEMPLATES",
           "describe", "parse_objects", "prompt_set"]

#: canonical colour -> its words (the first is the canonical one)
COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"), "green": ("green", "lime"),
    "blue": ("blue", "deep blue"), "yellow": ("yellow", "golden"), "cyan": ("cyan", "aqua"),
    "magenta": ("magenta", "pink"), "white": ("white", "snow-white"),
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "ball", "round dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge", "triangular shape"),
}
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "right": ("right", "to the right", "rightwards"), "left": ("left", "to the left", "leftwards"),
    "up": ("up", "upwards", "towards the top"), "down": ("down", "downwards", "towards the bottom"),
    "up-right": ("up-right", "up and to the right", "towards the top right"),
    "up-left": ("up-left", "up and to the left", "towards the top left"),
    "down-right": ("down-right", "down and to the right", "towards the bottom right"),
    "down-left": ("down-left", "down and to the left", "towards the bottom left"),
}
#: one object of a clip: ``{a}`` article, ``{c}`` colour, ``{s}`` shape, ``{d}`` direction
VIDEO_TEMPLATES = ("{a} {c} {s} moving {d}", "{a} {c} {s} moves {d}", "{a} {c} {s} drifting {d}",
                   "{a} {c} {s} sliding {d}", "{a} {c} {s} heading {d}")
#: one object of an image: no motion words
IMAGE_TEMPLATES = ("{a} {c} {s}", "{a} {c} {s} on a black background", "a picture of {a} {c} {s}",
                   "{a} single {c} {s}")
#: colour-shape combinations no training clip shows (Moving Shapes re-draws them)
HELD_OUT_COMBOS = ("red triangle", "blue circle", "yellow square", "white triangle")
#: synonyms and templates never used in training captions
HELD_OUT_WORDS = ("scarlet", "ball", "block", "upwards")
HELD_OUT_TEMPLATES = ("{a} {c} {s} heading {d}", "{a} single {c} {s}")
JOINS = (" and ", ", ", " next to ")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _pick(rng: np.random.Generator, options: tuple[str, ...], held_out: tuple[str, ...]) -> str:
    allowed = [o for o in options if o not in held_out] or list(options)
    return allowed[int(rng.integers(len(allowed)))]


def describe(colors: list[str], shapes: list[str], directions: list[str] | None,
             rng: np.random.Generator, held_out: bool = False) -> str:
    """A caption of objects ``colors[i] shapes[i]`` (moving ``directions[i]``; ``None`` for an
    image caption without motion words), worded at random from ``rng``: a template, synonyms
    and a joining word each. ``held_out=False`` never uses :data:`HELD_OUT_WORDS` or
    :data:`HELD_OUT_TEMPLATES` (training); ``True`` may (evaluation prompts).

    Raises:
        KeyError: an unknown colour, shape or direction.
    """
    words = () if held_out else HELD_OUT_WORDS
    templates = IMAGE_TEMPLATES if directions is None else VIDEO_TEMPLATES
    parts = []
    for i, (c, s) in enumerate(zip(colors, shapes)):
        cw, sw = _pick(rng, COLOR_WORDS[c], words), _pick(rng, SHAPE_WORDS[s], words)
        dw = "" if directions is None else _pick(rng, DIRECTION_WORDS[directions[i]], words)
        tpl = _pick(rng, templates, () if held_out else HELD_OUT_TEMPLATES)
        parts.append(tpl.format(a=_article(cw), c=cw, s=sw, d=dw))
    text = parts[0]
    for p in parts[1:]:
        text += _pick(rng, JOINS, ()) + p
    return text


def _alternation(table: dict[str, tuple[str, ...]]) -> str:
    words = sorted((w for ws in table.values() for w in ws), key=len, reverse=True)
    return "|".join(re.escape(w) for w in words)


_COLOR = {w: c for c, ws in COLOR_WORDS.items() for w in ws}
_SHAPE = {w: s for s, ws in SHAPE_WORDS.items() for w in ws}
_DIRECTION = {w: d for d, ws in DIRECTION_WORDS.items() for w in ws}
_OBJECT = re.compile(rf"\b({_alternation(COLOR_WORDS)}) ({_alternation(SHAPE_WORDS)})"
                     rf"(?:\s+(?:moving|moves|drifting|sliding|heading)\s+"
                     rf"({_alternation(DIRECTION_WORDS)}))?")


def parse_objects(caption: str) -> list[tuple[str, str, str | None]]:
    """The objects a caption of :func:`describe` (or the one-template captions of
    :func:`~vidiff.data.moving_shapes.make_caption`) names, as canonical
    ``(colour, shape, direction or None)``; an empty list when it names none."""
    return [(_COLOR[c], _SHAPE[s], _DIRECTION[d] if d else None)
            for c, s, d in _OBJECT.findall(caption.lower())]


def prompt_set(n: int, seed: int = 0, motion: bool = True, held_out_share: float = 0.25
               ) -> list[str]:
    """``n`` one-object evaluation prompts: colour, shape (and direction) drawn from ``seed``;
    a ``held_out_share`` of them name a :data:`HELD_OUT_COMBOS` combination; wordings may use
    the held-out synonyms and templates."""
    rng = np.random.default_rng(seed)
    combos = [(c, s) for c in COLOR_WORDS for s in SHAPE_WORDS]
    seen = [cs for cs in combos if f"{cs[0]} {cs[1]}" not in HELD_OUT_COMBOS]
    held = [tuple(h.split()) for h in HELD_OUT_COMBOS]
    k = round(n * held_out_share)
    out = []
    for i in range(n):
        c, s = (held[i % len(held)] if i < k else seen[int(rng.integers(len(seen)))])
        d = [list(DIRECTION_WORDS)[int(rng.integers(8))]] if motion else None
        out.append(describe([c], [s], d, rng, held_out=True))
    return out
