"""Speed of two commits of vidiff, alternated in one session: the same benchmark scripts (from
this checkout) run against each commit's library (``PYTHONPATH=<worktree>/src``), old and new
in turn ``--rounds`` times, so drift of a noisy machine hits both alike. Reports the median of
each figure per commit and the ratio new / old.

    python benchmarks/compare_commits.py --old 363198f --new HEAD [--rounds 3] [--no-unet]

Figures: ``benchmarks/unet_speed.py`` (train and sample clips/s of each vidiff U-Net variant,
peers not needed) and ``benchmarks/loop_speed.py`` (trainer steps/s, pipeline clips/s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worktree(rev: str, base: Path) -> Path:
    d = base / rev.replace("/", "_")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(d), rev],
                   check=True, capture_output=True)
    return d


def run(script: str, src: Path, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(src), "TQDM_DISABLE": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], env=env,
                       capture_output=True, text=True, cwd=ROOT, check=True)
    return r.stdout


def figures(src: Path, repeats: int, steps: int, unet: bool = True) -> dict[str, float]:
    out: dict[str, float] = {}
    lines = run("unet_speed.py", src, ["--repeats", str(repeats)]).splitlines() if unet else []
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| vidiff"):
            out[f"{cells[0]} train clips/s"] = float(cells[3])
            out[f"{cells[0]} sample clips/s"] = float(cells[4])
    loop = json.loads(run("loop_speed.py", src, ["--repeats", str(repeats), "--steps",
                                                 str(steps)]).splitlines()[-1])
    out["trainer steps/s (vdm_tiny recipe)"] = loop["train_steps_per_s"]
    out["pipeline clips/s (vdm_tiny, ddim 10)"] = loop["sample_clips_per_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--old", required=True)
    p.add_argument("--new", default="HEAD")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="train steps timed by loop_speed.py")
    p.add_argument("--no-unet", action="store_true", help="loop_speed.py only")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {rev: worktree(rev, Path(tmp)) for rev in (a.old, a.new)}
        runs: dict[str, list[dict[str, float]]] = {a.old: [], a.new: []}
        try:
            for i in range(a.rounds):
                for rev in (a.old, a.new) if i % 2 == 0 else (a.new, a.old):
                    runs[rev].append(figures(trees[rev] / "src", a.repeats, a.steps,
                                             not a.no_unet))
                    print(f"# round {i + 1}: {rev} done", file=sys.stderr)
        finally:
            for d in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(d)],
                               capture_output=True)
    print(f"# median of {a.rounds} alternated rounds (each itself a median of {a.repeats})")
    print(f"| figure | {a.old} | {a.new} | new / old |\n|---|---|---|---|")
    for key in runs[a.old][0]:
        o = statistics.median(r[key] for r in runs[a.old])
        n = statistics.median(r[key] for r in runs[a.new])
        print(f"| {key} | {o:.2f} | {n:.2f} | {n / o:.3f} |")


if __name__ == "__main__":
    main()
