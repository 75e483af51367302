"""``split``: scene cuts, and clips between a minimum and a maximum duration.

Cuts come from PySceneDetect's ``AdaptiveDetector`` (a cut where the frame-to-frame content
change stands out from its neighbours' average by ``threshold``: fast cuts in camera motion do
not fire it), run on PyAV (the reader the rest of vidiff uses), as in Open-Sora's
``tools/scene_cut/scene_detect.py`` and Tora §3.3. A scene shorter than ``min_duration`` is
dropped; a longer one than ``max_duration`` is cut into consecutive pieces of ``max_duration``
(the remainder kept if at least ``min_duration``), as Open-Sora's ``cut_to_short`` does.

A clip is a row with ``start`` / ``end`` (seconds from the first frame; ``end`` is the next
clip's ``start``), ``start_frame`` / ``end_frame`` (end exclusive), ``duration``,
``num_frames`` and ``scene`` (the scene's number in its file). The datasets read these time
ranges directly; ``cut_dir`` also writes each clip as its own file (re-encoded H.264).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from ..data.video_io import VideoReadError, probe_video, write_video
from .deps import need
from .flow import decode_frames
from .table import bad_row, clip_range, is_ok

__all__ = ["SPLIT_COLUMNS", "detect_cuts", "scene_clips", "split_row"]

SPLIT_COLUMNS = ("start", "end", "start_frame", "end_frame", "scene", "source")


def detect_cuts(path: str, times: np.ndarray, threshold: float = 3.0,
                min_scene_len: int = 15) -> list[int]:
    """Frame numbers (indices into ``times``, the frames' presentation times in seconds from the
    first) where a new scene starts, ascending, without 0. ``threshold``: the AdaptiveDetector's
    ``adaptive_threshold``; ``min_scene_len``: frames. Raises
    :class:`~vidiff.data.video_io.VideoReadError` for a file PySceneDetect cannot read."""
    sd = need("scenedetect")
    logging.getLogger("pyscenedetect").setLevel(logging.ERROR)
    try:
        video = sd.open_video(str(path), backend="pyav", suppress_output=True)
        manager = sd.SceneManager()
        manager.add_detector(sd.AdaptiveDetector(adaptive_threshold=threshold,
                                                 min_scene_len=min_scene_len))
        manager.detect_scenes(video)
        scenes = manager.get_scene_list(start_in_scene=True)
    except Exception as e:  # PySceneDetect's and FFmpeg's own errors
        raise VideoReadError(f"{path}: scene detection failed ({type(e).__name__}: {e})") from e
    if not scenes:
        return []
    t0 = scenes[0][0].seconds  # PyAV's clock may not start at the first frame
    slack = 0.5 * float(np.min(np.diff(times))) if len(times) > 1 else 1e-3
    cuts = [int(np.searchsorted(times, s.seconds - t0 + slack, "right")) - 1
            for s, _ in scenes[1:]]
    return sorted(c for c in set(cuts) if 0 < c < len(times))


def scene_clips(bounds: list[int], times: np.ndarray, end_time: float, min_duration: float,
                max_duration: float | None) -> list[tuple[int, int, int]]:
    """``(scene, first frame, end frame)`` of the clips of scenes ``bounds[k]:bounds[k+1]``:
    whole scenes of ``min_duration`` to ``max_duration`` seconds, longer ones in pieces."""
    def t(i: int) -> float:
        return float(times[i]) if i < len(times) else end_time

    out = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        while a < b:
            e = b
            if max_duration and t(b) - t(a) > max_duration + 1e-9:
                e = int(np.searchsorted(times, t(a) + max_duration + 1e-9, "right")) - 1
                e = min(max(e, a + 1), b)  # the last frame whose time ends the piece in time
            if t(e) - t(a) >= min_duration - 1e-9:
                out.append((k, a, e))
            a = e
    return out


def _cut_file(path: str, a: int, e: int, fps: float, cut_dir: str) -> str:
    """Frames ``[a, e)`` of ``path`` written (H.264) to ``cut_dir``, decoding only up to frame
    ``e`` (:func:`.flow.decode_frames`); its path. A file an earlier, killed run finished is
    kept. Raises :class:`VideoReadError` / ``OSError``."""
    tag = hashlib.sha1(path.encode()).hexdigest()[:8]
    out = Path(cut_dir) / f"{Path(path).stem}_{tag}_{a:06d}_{e:06d}.mp4"
    if not out.is_file():
        frames = [f for _, f in decode_frames(path, range(a, e))]
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.mp4")  # rows may repeat a clip
        write_video(tmp, np.stack(frames), fps=fps)
        os.replace(tmp, out)
    return str(out)


def split_row(row: dict, *, min_duration: float = 1.0, max_duration: float | None = 10.0,
              threshold: float = 3.0, min_scene_len: int = 15,
              cut_dir: str | None = None) -> list[dict]:
    """The row function of ``split``: the clips of a row's span (the whole file after
    ``scan``), one row each (an ``ok`` row with no clip long enough gives none). Rows not ``ok``
    pass through; a file that fails is marked ``ok=False``."""
    if not is_ok(row):
        return [row]
    path = row["path"]
    try:
        first, last = clip_range(row)
        info = probe_video(path, with_times=True)
        times = info["times"]
        n = len(times)
        last = min(last, n)
        period = float(times[-1] / (n - 1)) if n > 1 and times[-1] > 0 else 1 / info["fps"]
        end_time = float(times[-1]) + period
        cuts = [c for c in detect_cuts(path, times, threshold, min_scene_len) if first < c < last]
    except (VideoReadError, ValueError) as e:
        return [bad_row(row, "split", "unsplittable", str(e))]
    out = []
    try:
        for scene, a, e in scene_clips([first, *cuts, last], times, end_time, min_duration,
                                       max_duration):
            start = float(times[a])
            end = float(times[e]) if e < n else end_time
            clip = {**row, "start": start, "end": end, "start_frame": a, "end_frame": e,
                    "duration": end - start, "num_frames": e - a, "scene": scene,
                    "source": path}
            if cut_dir:
                clip.update(path=_cut_file(path, a, e, info["fps"], cut_dir), start=0.0,
                            end=end - start, start_frame=0, end_frame=e - a)
            out.append(clip)
    except (VideoReadError, ValueError, OSError) as e:
        return [bad_row(row, "split", "uncuttable" if cut_dir else "unsplittable", str(e))]
    return out
