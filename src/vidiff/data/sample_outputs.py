"""What a sampling command writes for viewing: clips tiled into one mp4 and gif, one lossless
file per clip (for ``vidiff eval``) and a contact sheet whose rows can carry labels (prompts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .video_io import write_video

__all__ = ["contact_sheet", "tile_videos", "write_sample_outputs", "draw_paths"]


def contact_sheet(videos: Sequence[np.ndarray], scale: int = 2, gap: int = 2,
                  labels: Sequence[str] | None = None) -> np.ndarray:
    """Grid image: one row per video, one column per frame (uint8 ``(H', W', 3)``); with
    ``labels`` (one per video, e.g. its prompt) each row gets its label in a strip above it."""
    rows = []
    for v in videos:
        F, H, W, _ = v.shape
        row = np.zeros((H, F * (W + gap) - gap, 3), np.uint8) + 40
        for f in range(F):
            row[:, f * (W + gap): f * (W + gap) + W] = v[f]
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.zeros((len(rows) * (rows[0].shape[0] + gap) - gap, width, 3), np.uint8) + 40
    y = 0
    for r in rows:
        sheet[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + gap
    sheet = sheet.repeat(scale, 0).repeat(scale, 1)
    return sheet if labels is None else _label_rows(sheet, labels, len(rows),
                                                    (rows[0].shape[0] + gap) * scale)


def _label_rows(sheet: np.ndarray, labels: Sequence[str], n: int, row_h: int) -> np.ndarray:
    """Insert a 12-px text strip above each of the ``n`` rows (Pillow's built-in font)."""
    font = ImageFont.load_default()
    strip = 12
    width = max(sheet.shape[1], 6 * max(len(t) for t in labels) + 4)
    out = np.zeros((sheet.shape[0] + n * strip, width, 3), np.uint8) + 40
    for i in range(n):
        y = i * (row_h + strip)
        text = Image.new("RGB", (width, strip), (40, 40, 40))
        ImageDraw.Draw(text).text((2, 0), str(labels[i]), fill=(230, 230, 230), font=font)
        out[y:y + strip] = np.asarray(text)
        part = sheet[i * row_h:(i + 1) * row_h]
        out[y + strip:y + strip + part.shape[0], :sheet.shape[1]] = part
    return out


def draw_paths(video: np.ndarray, paths: np.ndarray, scale: int = 4) -> np.ndarray:
    """A clip ``(F, H, W, 3)`` upscaled ``scale`` times with requested point paths ``(K, F, 2)``
    (pixel ``x, y``) drawn over every frame: the whole path as a thin line, the point this frame
    should be at as a ring (one colour a path)."""
    colors = [(255, 255, 255), (255, 160, 0), (0, 200, 255), (255, 0, 160), (160, 255, 0)]
    out = []
    for f, frame in enumerate(video):
        im = Image.fromarray(frame).resize((frame.shape[1] * scale, frame.shape[0] * scale),
                                           Image.NEAREST)
        d = ImageDraw.Draw(im)
        for k, path in enumerate(np.asarray(paths, np.float32) * scale):
            c = colors[k % len(colors)]
            d.line([tuple(p) for p in path], fill=c, width=1)
            x, y = path[f]
            d.ellipse([x - 3, y - 3, x + 3, y + 3], outline=c, width=1)
        out.append(np.asarray(im))
    return np.stack(out)


def tile_videos(videos: Sequence[np.ndarray], max_cols: int = 8) -> np.ndarray:
    """Clips of one size side by side, ``max_cols`` a row, as one uint8 ``(F, H', W', 3)``
    video (unused cells black)."""
    n = len(videos)
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    F, H, W, _ = videos[0].shape
    grid = np.zeros((F, rows * H, cols * W, 3), np.uint8)
    for i, v in enumerate(videos):
        r, c = divmod(i, cols)
        grid[:, r * H:(r + 1) * H, c * W:(c + 1) * W] = v
    return grid


def write_sample_outputs(videos: Sequence[np.ndarray], out: str | os.PathLike,
                         fps: float, labels: Sequence[str] | None = None) -> dict:
    """Write a batch of uint8 clips for viewing and evaluation: tiled into one mp4 and gif at
    ``out`` (upscaled to about 256 px), each clip losslessly at its own size into
    ``<stem>_clips/``, and a contact-sheet PNG ``<stem>_sheet.png`` (rows = clips, at most 16).
    Returns the paths written under the keys ``video`` (not for a ``.gif`` out), ``gif``,
    ``clips`` and ``contact_sheet``. ``labels``: one per clip, written over its sheet row and
    into ``<stem>_clips/labels.txt``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = tile_videos(videos)
    scale = max(1, 256 // max(grid.shape[1], grid.shape[2]))
    big = grid.repeat(scale, 1).repeat(scale, 2)
    files = {}
    if out.suffix.lower() == ".gif":
        files["gif"] = str(write_video(out, big, fps))
    else:
        files["video"] = str(write_video(out, big, fps))
        files["gif"] = str(write_video(out.with_suffix(".gif"), big, fps))
    clips = out.with_name(out.stem + "_clips")
    clips.mkdir(exist_ok=True)
    for i, v in enumerate(videos):  # one lossless file per clip, for `vidiff eval`
        write_video(clips / f"clip_{i:03d}.mp4", v, fps, lossless=True)
    if labels is not None:
        (clips / "labels.txt").write_text("".join(f"{t}\n" for t in labels), encoding="utf-8")
    files["clips"] = str(clips)
    sheet = out.with_name(out.stem + "_sheet.png")
    Image.fromarray(contact_sheet(list(videos[:16]), scale=2,
                                  labels=None if labels is None else list(labels[:16]))).save(sheet)
    files["contact_sheet"] = str(sheet)
    return files
