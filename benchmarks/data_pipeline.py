"""Throughput of each ``vidiff data`` step, in clips per second, on a local pool of worker
processes, for three collections:

* ``shapes 64``: Moving Shapes clips, 64x64, written losslessly with their sidecars;
* ``real 64``: the footage of ``../shared/data/real`` resized to 64x64 (short side, centre
  crop), every frame kept;
* ``real src``: the same footage at its source resolution (720x528, 640x480, 320x240).

scan and split count files in, the later steps clips in (split makes the clips: scenes of 1 to
10 s). The pool is started before the clock. Then the whole pipeline over the real footage in
one command, ``vidiff data run``, timed from the shell (start-up and imports included).

    python benchmarks/data_pipeline.py [--workers 2 --clips 32 --frames 32]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vidiff.data.datasets import frames_to_tensor, resize_crop
from vidiff.data.moving_shapes import MovingShapesConfig
from vidiff.data.video_io import iter_frames, probe_video, write_video
from vidiff.dataproc import pipeline as pl
from vidiff.dataproc.engine import Engine
from vidiff.dataproc.shapes import write_shapes

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"


def shrink(src: Path, dst: Path, size: int) -> None:
    """Each video of ``src`` resized to ``size`` x ``size`` into ``dst`` (lossless)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        frames = np.stack(list(iter_frames(f)))
        x = resize_crop(frames_to_tensor(frames), size)
        small = ((x.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        write_video(dst / f"{f.stem}.mkv", small, fps=probe_video(f)["fps"], lossless=True)


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} ({n})"


def bench(folder: Path, work: Path, engine: Engine, captions: bool) -> dict[str, str]:
    """Each step once over ``folder``: clips/s (clips in)."""
    out = {}
    t = time.perf_counter()
    scan = pl.scan_step(folder, work / "scan.csv", engine)
    out["scan"] = _rate(len(scan), time.perf_counter() - t)
    t = time.perf_counter()
    clips = pl.split_step(work / "scan.csv", work / "clips.csv", engine)
    out["split"] = _rate(len(scan), time.perf_counter() - t)
    t = time.perf_counter()
    pl.score_step(work / "clips.csv", work / "scored.csv", engine)
    out["score"] = _rate(len(clips), time.perf_counter() - t)
    t = time.perf_counter()
    kept = pl.filter_step(work / "scored.csv", work / "kept.csv", where="duration >= 1")
    out["filter"] = _rate(len(clips), time.perf_counter() - t)
    src = work / "kept.csv"
    if captions:
        t = time.perf_counter()
        pl.caption_step(src, work / "captioned.csv", engine, "shapes")
        out["caption"] = _rate(len(kept), time.perf_counter() - t)
        src = work / "captioned.csv"
    t = time.perf_counter()
    pl.trajectories_step(src, work / "tracked.csv", engine, str(work / "tracks"))
    out["trajectories"] = _rate(len(kept), time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clips", type=int, default=32, help="Moving Shapes clips")
    p.add_argument("--frames", type=int, default=32, help="frames a Moving Shapes clip")
    p.add_argument("--real", type=Path, default=REAL)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vidiff_data_bench_"))
    try:
        write_shapes(tmp / "shapes", a.clips, MovingShapesConfig(num_frames=a.frames,
                                                                  camera_pan_prob=0.5))
        shrink(a.real, tmp / "real64", 64)
        sets = {"shapes 64": (tmp / "shapes", True), "real 64": (tmp / "real64", False),
                "real src": (a.real, False)}
        rows = {}
        with Engine("local", a.workers, progress=False) as engine:
            list(engine.map(pl.check_hooks, [(0, []), (1, [])]))  # start the pool
            for name, (folder, captions) in sets.items():
                rows[name] = bench(folder, tmp / name.replace(" ", "_"), engine, captions)
        steps = ["scan", "split", "score", "filter", "caption", "trajectories"]
        print(f"\nclips/s (clips in), {a.workers} local worker processes\n")
        print("| step | " + " | ".join(sets) + " |")
        print("|---|" + "---|" * len(sets))
        for s in steps:
            print(f"| {s} | " + " | ".join(rows[n].get(s, "-").strip() for n in sets) + " |")
        run_dir = tmp / "run"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vidiff.cli", "data", "run", str(a.real),
                        "--out", str(run_dir), "--workers", str(a.workers), "--no-progress"],
                       check=True, capture_output=True, cwd=ROOT)
        print(f"\nvidiff data run {a.real} --out DIR --workers {a.workers}: "
              f"{time.perf_counter() - t:.1f} s wall, start-up included")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
