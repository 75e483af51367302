"""Training datasets. Every item is a dict with ``"video"``: float ``(C, F, H, W)`` in ``[-1, 1]``
(images: ``(C, H, W)``) and optional ``"caption"`` / ``"label"``.

Items are pure functions of ``(index, seed)``, so a run is reproducible and resumes exactly.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..registry import DATASETS
from .captions import describe
from .moving_shapes import PALETTE, MovingShapesConfig, generate_clip
from .optical_flow import clip_flow
from .spans import ROW_COLUMNS, crop_tracks, frame_span, in_span, load_tracks, row_ok
from .video_io import READABLE_SUFFIXES, VideoReadError, iter_frames, probe_video, read_frames

__all__ = ["MovingShapesDataset", "VideoFolderDataset", "frames_to_tensor", "resize_crop",
           "collate", "read_video_list", "clip_frames", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = READABLE_SUFFIXES  # the one list, in video_io


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(F, H, W, 3)`` -> float ``(3, F, H, W)`` in ``[-1, 1]``."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8, copy=True)).permute(3, 0, 1, 2).float()
    return x / 127.5 - 1.0


def resize_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(C, F, H, W)`` so the shorter side is ``size`` (antialiased bilinear), then
    centre-crop to ``size x size``."""
    C, Fr, H, W = x.shape
    s = size / min(H, W)
    nh, nw = max(size, round(H * s)), max(size, round(W * s))
    y = x.permute(1, 0, 2, 3)
    if (nh, nw) != (H, W):
        y = F.interpolate(y, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    return y[:, :, top:top + size, left:left + size].permute(1, 0, 2, 3).clamp(-1, 1)


class MovingShapesDataset(Dataset):
    """Moving Shapes clips; item ``i`` is the clip of seed ``seed * 1_000_003 + i``.

    ``label``: ``None``, ``"first_color"`` (palette index of the first object) or
    ``"num_objects"`` (count - 1) for class-conditional training. ``images``: items are one
    frame of the clip, ``(3, H, W)``, captioned without motion words (text-to-image training,
    Make-A-Video's first stage). ``flow``: clip items also carry their dense forward flow
    ``"flow"`` ``(F, 2, H, W)`` in pixels (Tora's trajectory training).
    """

    def __init__(self, cfg: MovingShapesConfig, seed: int = 0, length: int = 10 ** 9,
                 label: str | None = None, images: bool = False, flow: bool = False):
        if label not in (None, "first_color", "num_objects"):
            raise ValueError(f"unknown moving_shapes label {label!r}")
        self.cfg, self.seed, self.length, self.label = cfg, seed, length, label
        self.images, self.flow = images, flow

    @property
    def num_classes(self) -> int | None:
        if self.label == "first_color":
            return len(PALETTE)
        if self.label == "num_objects":
            return self.cfg.max_objects
        return None

    def __len__(self) -> int:
        return self.length

    @property
    def clip_shape(self) -> tuple[int, int]:
        """``(frames, size)`` of an item in pixels."""
        return (1 if self.images else self.cfg.num_frames), self.cfg.size

    def __getitem__(self, i: int) -> dict:
        seed = self.seed * 1_000_003 + int(i)
        clip = generate_clip(self.cfg, seed)
        if self.images:
            rng = np.random.default_rng([seed, 2])
            f = int(rng.integers(len(clip.video)))
            cap = describe(clip.colors, clip.shapes, None, rng) \
                if self.cfg.captions == "varied" else \
                " and ".join(f"a {c} {s}" for c, s in zip(clip.colors, clip.shapes))
            item = {"video": frames_to_tensor(clip.video[f:f + 1])[:, 0], "caption": cap}
        else:
            item = {"video": frames_to_tensor(clip.video), "caption": clip.caption,
                    "fps": clip.fps}
            if self.flow:
                item["flow"] = torch.from_numpy(clip.flow)
        if self.label == "first_color":
            item["label"] = list(PALETTE).index(clip.colors[0])
        elif self.label == "num_objects":
            item["label"] = len(clip.colors) - 1
        return item


def read_video_list(path: str | Path, columns: tuple[str, ...] = ()) -> list[tuple]:
    """The rows of a CSV list of videos as ``(line number, path cell, caption or None, span)``,
    as spreadsheets write them: a UTF-8 or UTF-16 byte-order mark, ``,`` ``;`` or tab between
    cells, header names in any case. ``span`` is ``(start, end)`` in seconds from the optional
    ``start`` / ``end`` columns (``vidiff data split`` writes them; an empty cell is the file's
    start or end), ``None`` without them. Blank rows are left out; an empty path is kept (for
    the caller to name its line). A span that is not two numbers with ``start < end`` is a
    ``ValueError`` naming the line and column. With ``columns`` each row has a fifth element,
    ``{column: stripped cell, or None when empty or absent}``."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (save it as 'CSV UTF-8')") from e
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    if "path" not in header:
        raise ValueError(f"{path}: CSV needs a 'path' column (its header: "
                         f"{', '.join(header) or 'none'})")
    rows = []
    for row in reader:
        if any(cell.strip() for cell in row):
            cells = dict(zip(header, row))
            span = None
            if "start" in header or "end" in header:
                span = tuple(_seconds(cells.get(k, ""), f"{path}:{reader.line_num}: {k}", d)
                             for k, d in (("start", 0.0), ("end", float("inf"))))
                if not span[0] < span[1]:
                    raise ValueError(f"{path}:{reader.line_num}: start {span[0]:g} must be "
                                     f"before end {span[1]:g}")
            rows.append((reader.line_num, (cells.get("path") or "").strip(),
                         cells.get("caption", "") if "caption" in header else None, span)
                        + ((({c: (cells.get(c) or "").strip() or None for c in columns}),)
                           if columns else ()))
    return rows


def _seconds(cell: str, where: str, default: float) -> float:
    """A time cell in seconds (``default`` when empty)."""
    if not cell.strip():
        return default
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{where} must be a time in seconds, got {cell.strip()!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a time >= 0 s, got {cell.strip()}")
    return value


def clip_frames(times: np.ndarray, vfr: bool, num_frames: int, rng: random.Random,
                target_fps: float | None = None, stride: int = 1) -> tuple[np.ndarray, float]:
    """Which frames (indices into ``times``, the frames' presentation times in seconds) make a
    clip, and its real frame rate. With ``target_fps`` the frames are those on screen
    ``1 / target_fps`` seconds apart (for an evenly spaced file, rounded to whole frames);
    otherwise every ``stride``-th frame. The start is drawn with ``rng``; a file too short for
    a clip gives indices past its end."""
    n, d = len(times), np.diff(times)
    period = float(d.mean()) if n > 1 and times[-1] > 0 else 1.0
    if not target_fps:
        need = (num_frames - 1) * stride + 1
        idx = rng.randint(0, n - need) + stride * np.arange(num_frames) if n >= need else \
            np.arange(need)[::stride]
        span = times[idx[-1]] - times[idx[0]] if idx[-1] < n else 0
        return idx, float((num_frames - 1) / span if vfr and span > 0 else 1 / (period * stride))
    step = 1 / target_fps if vfr else max(1, round(1 / (target_fps * period))) * period
    slack = 0.5 * float(d[d > 0].min()) if (d > 0).any() else 1e-3  # timestamps' rounding
    starts = int(np.searchsorted(times, times[-1] - (num_frames - 1) * step + slack, "right"))
    if starts == 0:
        return np.arange(n, n + num_frames), 1 / step
    grid = times[rng.randint(0, starts - 1)] + step * np.arange(num_frames)
    return np.searchsorted(times, grid + slack, "right") - 1, 1 / step


class VideoFolderDataset(Dataset):
    """Clips of ``num_frames`` frames from a folder of videos (recursively) or a CSV list.

    The CSV (:func:`read_video_list`) has a ``path`` column (relative to the CSV's folder or
    absolute), an optional ``caption`` and optional ``start`` / ``end`` columns (seconds from
    the first frame, as ``vidiff data split`` writes them; its ``start_frame`` / ``end_frame``
    win when present): a row with a span is read from that range only, so one file gives
    several clips; rows whose ``ok`` is false are left out. With a ``trajectory`` column (the
    ``.npz`` of ``vidiff data trajectories``) an item also has ``"trajectories"``: float
    ``(N, F, 2)`` (x, y) pixel positions in the item's ``size x size`` frames at its sampled
    frames (pixel centres at integers; NaN where not tracked) and ``"trajectory_visible"``: bool
    ``(N, F)`` (tracked, and inside the crop). Batches: :func:`collate` leaves them out. A clip
    is every ``frame_stride``-th frame, or the frames ``1 / target_fps`` seconds apart by their
    presentation times (variable-rate phone videos too); its start is drawn from
    ``(seed, index)`` and its ``fps`` is the real rate. Frames come upright and are resized
    (shorter side) and centre-cropped to ``size``.

    Unreadable files - empty, truncated, not a video, too short - and CSV rows without a usable
    path raise :class:`VideoReadError` naming the file (and CSV line) when ``on_error="error"``.
    With ``on_error="skip"`` they are dropped with a warning when found at construction (each
    file is probed) or replaced by the next good file if they fail later; ``skipped`` counts
    them.
    """

    def __init__(self, path: str | Path, num_frames: int = 16, size: int = 64,
                 frame_stride: int = 1, target_fps: float | None = None,
                 on_error: str = "error", seed: int = 0, flow: bool = False):
        p = Path(path)
        if on_error not in ("error", "skip"):
            raise ValueError("on_error must be 'error' or 'skip'")
        self.num_frames, self.size = num_frames, size
        self.stride, self.target_fps = frame_stride, target_fps
        self.on_error, self.seed, self.flow = on_error, seed, flow
        self.skipped: list[tuple[str, str]] = []
        entries: list[tuple] = []  # (where, file, caption, span, frames, trajectory file)
        if p.is_dir():
            entries = [("", f, None, None, None, None) for f in sorted(p.rglob("*"))
                       if f.suffix.lower() in VIDEO_SUFFIXES and f.is_file()]
        elif p.is_file() and p.suffix.lower() in (".csv", ".tsv"):
            not_ok = 0
            for line, cell, cap, span, cells in read_video_list(p, ROW_COLUMNS):
                if not row_ok(cells["ok"]):
                    not_ok += 1
                    continue
                fp, tr = (Path(c) if c else None for c in (cell, cells["trajectory"]))
                entries.append((f"{p}:{line}: ", fp if fp is None or fp.is_absolute()
                                else p.parent / fp, cap, span,
                                frame_span(cells, f"{p}:{line}"),
                                tr if tr is None or tr.is_absolute() else p.parent / tr))
            if not_ok:
                log.info("%s: %d row(s) with ok = false left out", p, not_ok)
        else:
            raise FileNotFoundError(f"{p}: not a folder of videos or a .csv list")
        self.items: list[tuple[Path, str | None, dict]] = []
        probed: dict[Path, dict] = {}  # a file of many clips is probed once
        for where, fp, cap, span, frames, tracks in entries:
            try:
                if fp is None:
                    raise VideoReadError("empty 'path' cell")
                if fp not in probed:
                    probed[fp] = probe_video(fp, with_times=True)
                info = {**in_span(probed[fp], span, frames), "tracks": tracks}
                self._clip(fp, info, random.Random(0))  # too short for a clip?
                self.items.append((fp, cap, info))
            except (VideoReadError, OSError) as e:
                self._bad(str(fp or where), where + str(e))
        if not self.items:
            raise VideoReadError(f"{p}: no readable videos ({', '.join(VIDEO_SUFFIXES)})")

    def _bad(self, path: str, why: str) -> None:
        if self.on_error == "error":
            raise VideoReadError(why if path in why else f"{path}: {why}")
        self.skipped.append((path, why))
        log.warning("skipping unreadable video (%d so far): %s", len(self.skipped), why)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def clip_shape(self) -> tuple[int, int]:
        """``(frames, size)`` of an item in pixels."""
        return self.num_frames, self.size

    def _clip(self, fp: Path, info: dict, rng: random.Random) -> tuple[np.ndarray, float]:
        times = info["times"]
        idx, fps = clip_frames(times, info["vfr"], self.num_frames, rng, self.target_fps,
                               self.stride)
        if idx.max() >= len(times):
            n = len(times)
            rate = f" at {self.target_fps:g} fps" if self.target_fps else (
                f" every {self.stride} frames" if self.stride > 1 else "")
            raise VideoReadError(f"{fp}: {n} frames ({times[-1] * n / max(n - 1, 1):.2f} s), too "
                                 f"short for a clip of {self.num_frames} frames{rate}")
        return idx, fps

    def _load(self, i: int) -> dict:
        fp, cap, info = self.items[i]
        rng = random.Random(self.seed * 7_919 + i)
        for attempt in range(2):
            idx, fps = self._clip(fp, info, rng)
            try:
                frames = read_frames(fp, idx + info["offset"])
                break
            except VideoReadError:
                if attempt or info.get("counted"):
                    raise
                # a container can list more frames than decode: count what does, once, and
                # draw again
                decodable = sum(1 for _ in iter_frames(fp)) - info["offset"]
                info["times"] = info["times"][:max(decodable, 0)]
                info["num_frames"], info["counted"] = len(info["times"]), True
        item = {"video": resize_crop(frames_to_tensor(frames), self.size), "fps": fps}
        if self.flow:
            item["flow"] = clip_flow(item["video"])
        if info["tracks"] is not None:
            tracks, visible = load_tracks(info["tracks"], idx + info["offset"])
            tracks, visible = crop_tracks(tracks, visible, frames.shape[1:3], self.size)
            item["trajectories"] = torch.from_numpy(tracks)
            item["trajectory_visible"] = torch.from_numpy(visible)
        if cap is not None:
            item["caption"] = cap
        return item

    def __getitem__(self, i: int) -> dict:
        for k in range(len(self.items)):
            j = (i + k) % len(self.items)
            try:
                return self._load(j)
            except VideoReadError as e:
                self._bad(str(self.items[j][0]), str(e))
        raise VideoReadError("no readable clip left in the dataset")


def collate(items: list[dict]) -> dict:
    """Stack ``video`` (or cached ``latents``, and ``label``/``fps``/``flow``); keep captions as
    a list."""
    key = "latents" if "latents" in items[0] else "video"
    out = {key: torch.stack([it[key] for it in items])}
    if all("label" in it for it in items):
        out["label"] = torch.tensor([it["label"] for it in items])
    if all("fps" in it for it in items):
        out["fps"] = torch.tensor([float(it["fps"]) for it in items])
    if all("flow" in it for it in items):
        out["flow"] = torch.stack([it["flow"] for it in items])
    if any("caption" in it for it in items):  # (a missing caption is the empty prompt)
        out["caption"] = [it.get("caption", "") for it in items]
    return out


# -- data.kind entries (the recipe's ``data:`` section is the DataConfig of vidiff.config) ---------
@DATASETS.register("moving_shapes")
def moving_shapes_dataset(d, seed: int) -> MovingShapesDataset:
    """``data.kind: moving_shapes``: an endless stream of ``data.moving_shapes`` clips."""
    return MovingShapesDataset(d.moving_shapes, seed=seed, label=d.label, images=d.images,
                               flow=d.flow)


@DATASETS.register("video_folder")
@DATASETS.register("video_csv")
def video_folder_dataset(d, seed: int) -> VideoFolderDataset:
    """``data.kind: video_folder | video_csv``: clips of the videos at ``data.path``."""
    if not d.path:
        raise ValueError("data.path is required for video_folder / video_csv")
    return VideoFolderDataset(d.path, d.num_frames, d.size, d.frame_stride, d.target_fps,
                              d.on_error, seed, flow=d.flow)
