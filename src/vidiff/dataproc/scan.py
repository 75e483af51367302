"""``scan``: one row per video file with what it holds, and why it cannot be used if it cannot.

The numbers come from :func:`vidiff.data.video_io.probe_video` (presentation times, so variable
rates and rotation are those the datasets see); the container header adds the codec, audio and
what the file *declares*, which is how a truncated file shows: it declares more frames or a
longer duration than its packets hold, or (MP4) its index never got written.

``reason`` codes: ``missing`` (no such file), ``empty`` (zero bytes), ``unreadable`` (not a
media file, or damaged), ``audio_only`` (streams but no video), ``no_frames`` (a video stream
with no decodable frame), ``truncated``; with ``verify`` also ``corrupt`` (frames that do not
decode).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import av

from ..data.video_io import READABLE_SUFFIXES, VideoReadError, iter_frames, probe_video

__all__ = ["SCAN_COLUMNS", "REASONS", "list_videos", "scan_file"]

#: the columns ``scan`` writes, in order
SCAN_COLUMNS = ("path", "ok", "reason", "detail", "bytes", "codec", "duration", "fps", "vfr",
                "num_frames", "width", "height", "rotation", "has_audio")
REASONS = ("missing", "empty", "unreadable", "audio_only", "no_frames", "truncated", "corrupt")

#: ISO base media (MP4, MOV, 3GP) top-level boxes a file may start with
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pdin", b"styp")


def list_videos(folder: str | os.PathLike, all_files: bool = False) -> list[str]:
    """The video files under ``folder`` (recursively; :data:`READABLE_SUFFIXES`, or every file
    with ``all_files``), sorted, as absolute paths. Raises ``FileNotFoundError`` for a missing
    folder."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    return [os.path.abspath(p) for p in sorted(root.rglob("*")) if p.is_file() and not
            p.name.startswith(".") and (all_files or p.suffix.lower() in READABLE_SUFFIXES)]


def _row(path: str, **cells) -> dict:
    base = {"path": path, "ok": False, "reason": None, "detail": None, "bytes": 0,
            "codec": None, "duration": None, "fps": None, "vfr": None, "num_frames": 0,
            "width": 0, "height": 0, "rotation": 0, "has_audio": False}
    return {**base, **cells}


def _iso_truncated(path: str, size: int) -> bool | None:
    """For an ISO media file: whether its boxes run past the end of the file or its index
    (``moov``) is missing; ``None`` for another kind of file."""
    with open(path, "rb") as f:
        if f.read(8)[4:8] not in _ISO_BOXES:
            return None
        pos, kinds = 0, set()
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            n, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if n == 1 and len(head) == 16:
                n = int.from_bytes(head[8:16], "big")
            elif n == 0:
                n = size - pos
            if n < 8:
                return True
            kinds.add(kind)
            pos += n
    return pos > size or b"moov" not in kinds


def _header(path: str) -> dict:
    """Codec, audio and what the container declares (frames, seconds)."""
    with av.open(path) as c:
        videos = [s for s in c.streams.video
                  if not s.disposition & av.stream.Disposition.attached_pic]
        audio = len(c.streams.audio) > 0
        if not videos:
            return {"video": False, "has_audio": audio, "streams": len(c.streams)}
        s = videos[0]
        declared = float(s.duration * s.time_base) if s.duration and s.time_base else None
        rate = float(s.average_rate or s.guessed_rate or 0)
        return {"video": True, "has_audio": audio, "codec": s.codec_context.name,
                "frames_seconds": s.frames / rate if s.frames and rate else None,
                "frames": int(s.frames or 0), "stream_seconds": declared,
                "container_seconds": c.duration / 1e6 if c.duration else None}


def _measured_duration(info: dict) -> float:
    t, n = info["times"], info["num_frames"]
    period = t[-1] / (n - 1) if n > 1 and t[-1] > 0 else 1 / info["fps"]
    return float(t[-1] + period)


def _truncation(head: dict, info: dict, duration: float) -> str | None:
    """Why the header says the file ends early, or None."""
    period = 1 / info["fps"]
    claims = {"video stream": head["stream_seconds"],  # AVI: frames a null packet repeats count
              f"header's {head['frames']} frames": head["frames_seconds"]}
    if head["stream_seconds"] is None and not head["has_audio"]:  # audio may outlast video
        claims["file"] = head["container_seconds"]
    for where, declared in claims.items():
        if declared and declared > duration + max(2 * period, 0.02 * declared):
            return f"{declared:.2f} s declared ({where}), {duration:.2f} s of frames stored"
    return None


def scan_file(path: str, verify: bool = False) -> list[dict]:
    """One row (in a list, as a row function) describing the video at ``path``: ``bytes``,
    ``codec``, ``duration`` (seconds, from the presentation times), ``fps`` (mean rate), ``vfr``
    (unevenly spaced frames), ``num_frames``, ``width`` / ``height`` (upright, square pixels),
    ``rotation`` (display matrix, degrees counter-clockwise), ``has_audio``; ``ok`` and, for a
    file that cannot be used, ``reason`` (one of :data:`REASONS`) and ``detail``. ``verify``
    decodes every frame (slow) to catch damage the container does not show. Never raises for a
    bad file."""
    if isinstance(path, dict):  # a row of a table of paths
        path = path["path"]
    p = Path(path)
    if not p.is_file():
        return [_row(path, reason="missing", detail="no such file")]
    size = p.stat().st_size
    if size == 0:
        return [_row(path, reason="empty", detail="zero bytes")]
    try:
        head = _header(path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        cut = _iso_truncated(path, size) or isinstance(e, av.error.EOFError)
        return [_row(path, bytes=size, reason="truncated" if cut else "unreadable",
                     detail=f"cannot open: {' '.join(str(e).split())}")]
    if not head["video"]:
        return [_row(path, bytes=size, has_audio=head["has_audio"],
                     reason="audio_only" if head["has_audio"] else "unreadable",
                     detail="no video stream" + (f" ({head['streams']} other streams)"
                                                 if head["streams"] else ""))]
    cells = {"bytes": size, "codec": head["codec"], "has_audio": head["has_audio"]}
    try:
        info = probe_video(path, with_times=True)
    except VideoReadError as e:
        msg = str(e).replace(f"{path}: ", "")
        reason = "no_frames" if "no decodable frames" in msg else "truncated"
        return [_row(path, **cells, reason=reason, detail=msg)]
    duration = _measured_duration(info)
    cells.update(duration=duration, fps=info["fps"], vfr=info["vfr"],
                 num_frames=info["num_frames"], width=info["width"], height=info["height"],
                 rotation=info["rotation"])
    why = _truncation(head, info, duration)
    if why:
        return [_row(path, **cells, reason="truncated", detail=why)]
    if verify:
        decoded = 0
        try:
            for decoded, _ in enumerate(iter_frames(path), 1):
                pass
        except VideoReadError as e:
            return [_row(path, **cells, reason="corrupt", detail=f"frame {decoded}: {e}")]
        if decoded < info["num_frames"] - 1:
            return [_row(path, **cells, reason="corrupt", detail=f"{decoded} of "
                         f"{info['num_frames']} frames decode")]
    if not math.isfinite(duration) or duration <= 0:
        return [_row(path, **cells, reason="no_frames", detail="zero duration")]
    return [_row(path, **cells, ok=True)]
