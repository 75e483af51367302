"""Moving Shapes: a synthetic video domain whose ground truth is exact.

Coloured circles, squares and triangles move in straight lines over a black canvas (or, with
``background="texture"``, a dim textured one that moves with the camera pan) and bounce
elastically off the walls. Every clip carries its caption, per-object centroid trajectories,
dense forward flow and per-object masks, and is a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..ranges import ranged
from .captions import describe

__all__ = ["PALETTE", "SHAPES", "MovingShapesConfig", "ShapeClip", "generate_clip",
           "direction_word", "make_caption", "render_frame"]

#: the fixed saturated palette (name -> RGB)
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "white": (255, 255, 255),
}
SHAPES = ("circle", "square", "triangle")


@dataclass
class MovingShapesConfig:
    """Parameters of the domain. Sizes and speeds are fractions of the canvas height so that a
    config means the same thing at 32x32 and 64x64 (1-4 px/frame at 64x64 by default)."""

    size: int = ranged(64, ">= 1")
    num_frames: int = ranged(16, ">= 1")
    min_objects: int = ranged(1, ">= 0", le="max_objects")
    max_objects: int = ranged(3, ">= 1")
    #: half-extent of a shape, as a fraction of the canvas
    min_scale: float = ranged(0.09, "(0, 0.5]", le="max_scale")
    max_scale: float = ranged(0.16, "(0, 0.5]")
    #: speed in canvas fractions per frame
    min_speed: float = ranged(1.0 / 64, ">= 0", le="max_speed")
    max_speed: float = ranged(4.0 / 64, ">= 0")
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = tuple(PALETTE)
    #: probability of a camera pan (a common drift of everything), and its speed range
    camera_pan_prob: float = ranged(0.0, "[0, 1]")
    max_pan_speed: float = ranged(1.5 / 64, ">= 0")
    #: if set, each clip draws an fps from this tuple and speeds are per second / fps * 8
    fps_choices: tuple[int, ...] | None = ranged(None, ">= 1")
    #: "template": one fixed wording ("a red circle moving up"); "varied": templates and
    #: synonyms of :mod:`vidiff.data.captions`, never its held-out wordings
    captions: str = "template"
    #: colour-shape combinations never generated ("red triangle"): an object drawn with one is
    #: given another shape (held out of training, for measuring adherence on unseen combinations)
    held_out_combos: tuple[str, ...] = ()
    #: "black": the empty canvas; "texture": a fixed smooth random texture, dim (every channel
    #: in [3, 55], below the evaluation detector's ``dark`` of 80, so it stays background),
    #: shifted each frame by the accumulated camera pan (it never bounces: it is what a camera
    #: sees behind the objects). Drawn from its own generator ``[seed, 3]``: the objects, caption
    #: and trajectories are those of the black clip.
    background: str = "black"
    #: "linear": straight lines between elastic bounces; "smooth": smooth random paths - the
    #: heading turns at a rate that drifts (up to ``max_turn`` radians a frame) and the speed
    #: changes by up to 15% a frame within the speed range - still bouncing off the walls;
    #: "mixed": each object draws one of the two. The extra randomness comes from its own
    #: generator ``[seed, 2]``, so "linear" clips are those of earlier versions.
    motion: str = "linear"
    max_turn: float = ranged(0.3, ">= 0")
    extra: dict = field(default_factory=dict)


@dataclass
class ShapeClip:
    """One clip and its ground truth. ``video``: uint8 ``(F, H, W, 3)``; ``trajectories``:
    float ``(N, F, 2)`` centroids as (x, y) pixels; ``flow``: float ``(F, 2, H, W)`` forward flow
    (frame f to f+1, zero on the last frame and background); ``masks``: bool ``(N, F, H, W)``
    visible pixels of each object."""

    video: np.ndarray
    caption: str
    trajectories: np.ndarray
    flow: np.ndarray
    masks: np.ndarray
    colors: list[str]
    shapes: list[str]
    sizes: list[float]
    velocities: np.ndarray  # (N, 2) initial velocity in px/frame
    fps: int
    camera_pan: tuple[float, float]


def _shape_mask(shape: str, cx: float, cy: float, r: float, yy: np.ndarray, xx: np.ndarray
                ) -> np.ndarray:
    """Pixels (centres at integer + 0.5) inside the shape with centroid (cx, cy), half-extent r."""
    px, py = xx + 0.5 - cx, yy + 0.5 - cy
    if shape == "circle":
        return px * px + py * py <= r * r
    if shape == "square":
        return (np.abs(px) <= r) & (np.abs(py) <= r)
    if shape == "triangle":
        # isosceles, apex up, height 2r, centroid at (cx, cy): apex at cy - 4r/3, base at
        # cy + 2r/3 (a triangle's centroid lies a third of the way up from its base)
        top, bottom = -4.0 * r / 3.0, 2.0 * r / 3.0
        frac = (py - top) / (bottom - top)  # 0 at apex, 1 at base
        return (py >= top) & (py <= bottom) & (np.abs(px) <= frac * r * 1.15)
    raise ValueError(f"unknown shape {shape!r}")


def render_frame(size: int, objects: list[tuple[str, str, float, float, float]]) -> np.ndarray:
    """One black ``size x size`` frame (uint8 ``(H, W, 3)``) with ``objects`` drawn in order,
    each ``(colour, shape, half_extent_px, cx, cy)`` as :func:`generate_clip` draws them (later
    ones over earlier ones): a hand-made first frame for image-to-video and motion transfer."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frame = np.zeros((size, size, 3), np.uint8)
    for color, shape, r, cx, cy in objects:
        frame[_shape_mask(shape, cx, cy, r, yy, xx)] = PALETTE[color]
    return frame


def direction_word(vx: float, vy: float) -> str:
    """8-way compass word of a velocity in image coordinates (y down): 'up', 'down-left', ..."""
    ang = math.degrees(math.atan2(-vy, vx)) % 360  # 0 = right, 90 = up
    words = ["right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right"]
    return words[int(((ang + 22.5) % 360) // 45)]


def make_caption(colors: list[str], shapes: list[str], directions: list[str]) -> str:
    parts = [f"a {c} {s} moving {d}" for c, s, d in zip(colors, shapes, directions)]
    return " and ".join(parts)


def generate_clip(cfg: MovingShapesConfig, seed: int) -> ShapeClip:
    """Render one clip deterministically from ``seed``. Raises ``ValueError`` for an unknown
    ``cfg.background`` or ``cfg.captions``, or more objects than colours."""
    if cfg.background not in ("black", "texture"):
        raise ValueError(f"moving_shapes.background must be 'black' or 'texture', got "
                         f"{cfg.background!r}")
    rng = np.random.default_rng(seed)
    H = W = cfg.size
    F = cfg.num_frames
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    if n > len(cfg.colors):
        raise ValueError("more objects than colours: every object of a clip has its own colour")
    colors = list(rng.choice(cfg.colors, size=n, replace=False))
    shapes = [str(rng.choice(cfg.shapes)) for _ in range(n)]
    for i in range(n):  # (draws only when a combination is held out: other clips stay the same)
        if f"{colors[i]} {shapes[i]}" in cfg.held_out_combos:
            allowed = [s for s in cfg.shapes if f"{colors[i]} {s}" not in cfg.held_out_combos]
            if not allowed:
                raise ValueError(f"held_out_combos leave no shape for colour {colors[i]!r}")
            shapes[i] = str(rng.choice(allowed))
    sizes = [float(rng.uniform(cfg.min_scale, cfg.max_scale) * H) for _ in range(n)]
    fps = int(rng.choice(cfg.fps_choices)) if cfg.fps_choices else 8
    speed_scale = 8.0 / fps if cfg.fps_choices else 1.0
    pan = (0.0, 0.0)
    if cfg.camera_pan_prob > 0 and rng.random() < cfg.camera_pan_prob:
        a = rng.uniform(0, 2 * math.pi)
        sp = rng.uniform(0.3, 1.0) * cfg.max_pan_speed * H * speed_scale
        pan = (sp * math.cos(a), sp * math.sin(a))
    if cfg.motion not in ("linear", "smooth", "mixed"):
        raise ValueError(f"moving_shapes.motion must be linear, smooth or mixed, got "
                         f"{cfg.motion!r}")
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    traj = np.zeros((n, F, 2), np.float32)
    vel0 = np.zeros((n, 2), np.float32)
    wander = np.random.default_rng([seed, 2])  # smooth paths' own randomness
    speeds = (cfg.min_speed * H * speed_scale, cfg.max_speed * H * speed_scale)
    for i in range(n):
        r = sizes[i] * (4.0 / 3.0 if shapes[i] == "triangle" else 1.0)  # extent from centroid
        x, y = rng.uniform(r, W - r), rng.uniform(r, H - r)
        a = rng.uniform(0, 2 * math.pi)
        sp = rng.uniform(cfg.min_speed, cfg.max_speed) * H * speed_scale
        vx, vy = sp * math.cos(a) + pan[0], sp * math.sin(a) + pan[1]
        vel0[i] = (vx, vy)
        smooth = cfg.motion == "smooth" or (cfg.motion == "mixed" and wander.random() < 0.5)
        turn = wander.uniform(-1, 1) * cfg.max_turn
        for f in range(F):
            traj[i, f] = (x, y)
            if smooth and f:  # turn and change speed (the object's own part of the motion)
                ox, oy = vx - pan[0], vy - pan[1]
                turn = float(np.clip(turn + wander.normal(0, cfg.max_turn / 3),
                                     -cfg.max_turn, cfg.max_turn))
                c, s_ = math.cos(turn), math.sin(turn)
                ox, oy = c * ox - s_ * oy, s_ * ox + c * oy
                k = float(np.clip(math.hypot(ox, oy) * wander.uniform(0.85, 1.15), *speeds))
                norm = max(math.hypot(ox, oy), 1e-6)
                vx, vy = ox / norm * k + pan[0], oy / norm * k + pan[1]
            x, vx = _reflect(x + vx, vx, r, W - r)
            y, vy = _reflect(y + vy, vy, r, H - r)
    video = np.zeros((F, H, W, 3), np.uint8)
    masks = np.zeros((n, F, H, W), bool)
    flow = np.zeros((F, 2, H, W), np.float32)
    if cfg.background == "texture":
        tex = _texture(np.random.default_rng([seed, 3]), H)
        for f in range(F):  # the content drifts by the pan: frame f shows T(x - f px, y - f py)
            video[f] = tex(xx + 0.5 - f * pan[0], yy + 0.5 - f * pan[1])
            if f + 1 < F:
                flow[f, 0], flow[f, 1] = pan
    for f in range(F):
        for i in range(n):  # later objects are drawn over earlier ones
            m = _shape_mask(shapes[i], traj[i, f, 0], traj[i, f, 1], sizes[i], yy, xx)
            masks[:i, f] &= ~m
            masks[i, f] = m
        for i in range(n):
            video[f][masks[i, f]] = PALETTE[colors[i]]
            if f + 1 < F:
                d = traj[i, f + 1] - traj[i, f]
                flow[f, 0][masks[i, f]] = d[0]
                flow[f, 1][masks[i, f]] = d[1]
    # the caption describes the heading seen over the first step
    heads = traj[:, 1] - traj[:, 0] if F > 1 else vel0
    dirs = [direction_word(float(h[0]), float(h[1])) for h in heads]
    if cfg.captions == "varied":  # its own generator: the clip is the same in both styles
        caption = describe(colors, shapes, dirs, np.random.default_rng([seed, 1]))
    elif cfg.captions == "template":
        caption = make_caption(colors, shapes, dirs)
    else:
        raise ValueError(f"moving_shapes.captions must be 'template' or 'varied', got "
                         f"{cfg.captions!r}")
    return ShapeClip(video=video, caption=caption, trajectories=traj,
                     flow=flow, masks=masks, colors=colors, shapes=shapes, sizes=sizes,
                     velocities=vel0, fps=fps, camera_pan=pan)


def _texture(rng: np.random.Generator, size: int):
    """A smooth random texture as a function of float pixel coordinates ``(x, y)`` (any values):
    one grey pattern (a sum of 8 plane waves, wavelengths 0.08-0.25 of the canvas ``size``)
    tinted by a random gain in [0.75, 1] a channel, giving uint8 ``(..., 3)`` with every
    channel in [3, 55]."""
    k = 2 * np.pi / (rng.uniform(0.08, 0.25, 8) * size)
    ang, ph = rng.uniform(0, 2 * np.pi, 8), rng.uniform(0, 2 * np.pi, 8)
    kx, ky, tint = k * np.cos(ang), k * np.sin(ang), rng.uniform(0.75, 1.0, 3)

    def at(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        w = np.cos(x[..., None] * kx + y[..., None] * ky + ph).sum(-1) / 8
        lum = np.clip(30 + 25 * w / 0.5, 5, 55)
        return (lum[..., None] * tint).round().astype(np.uint8)
    return at


def _reflect(p: float, v: float, lo: float, hi: float) -> tuple[float, float]:
    """Move to ``p`` and reflect elastically off ``lo``/``hi`` (velocity flips on each hit)."""
    while p < lo or p > hi:
        if p < lo:
            p, v = 2 * lo - p, -v
        if p > hi:
            p, v = 2 * hi - p, -v
    return p, v
