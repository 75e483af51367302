"""Tora's ablations on the tiny recipes, as tables: trajectory error (pixels, held-out circles,
zigzags and spirals), the share of frames where the requested object is missing, and Moving
Shapes validity, for

1. the motion-guidance fuser (adaptive norm, channel concat, cross-attention) x where it sits
   (temporal blocks, spatial blocks, all) - Tora's Table 5 / 6 (on sparse tracks, or with
   ``--mode dense`` on dense flow, as the fuser and compression rows);
2. the training schedule: dense flow only, sparse tracks only, dense then sparse, at equal steps
   (the paper's 39.3 / 24.7 / 14.3, Table 4);
3. compressing the flow images in time: the trajectory autoencoder, average pooling, frame
   sampling (Table 3).

Every variant is ``configs/tora_tiny.yaml`` (adaptive norm in the temporal blocks, sparse
tracks, trajectory autoencoder) with one setting changed, trained from the same base ST-DiT for
``--steps`` adapter steps (2 x ``--steps`` for the schedules: dense-then-sparse is ``--steps`` of
each) through ``vidiff train``, then measured by ``vidiff eval`` on the same requests. A
finished run is not trained again (an unfinished one starts over: the variants keep no
intermediate checkpoints); the eval reports are cached next to them.

    python benchmarks/tora_ablations.py --base runs/tora_base_tiny \\
        --trajectory-autoencoder runs/tora_traj_ae_tiny --steps 250 --out runs/tora_ablations
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "tora_tiny.yaml"

FUSERS = ("adanorm", "concat", "cross")
PLACEMENTS = ("temporal", "spatial", "all")
COMPRESSIONS = ("vae", "avg_pool", "sample")


def variants(steps: int, mode: str = "sparse") -> dict[str, tuple[list[str], str | None]]:
    """name -> (the ``--set`` overrides, the run it starts from: None = the base); the fuser
    and compression variants train on ``mode`` (sparse tracks, or dense flow)."""
    v: dict[str, tuple[list[str], str | None]] = {}
    for f in FUSERS:
        for p in PLACEMENTS:
            v[f"{f}-{p}"] = ([f"model.motion_fuser={f}", f"model.motion_placement={p}",
                              f"trajectory.mode={mode}", f"train.steps={steps}"], None)
    v["dense-only"] = (["trajectory.mode=dense", f"train.steps={2 * steps}"], None)
    v["sparse-only"] = ([f"train.steps={2 * steps}"], None)
    v["dense"] = (["trajectory.mode=dense", f"train.steps={steps}"], None)
    v["dense-then-sparse"] = ([f"train.steps={steps}"], "dense")
    for c in COMPRESSIONS[1:]:
        v[f"compress-{c}"] = ([f"trajectory.compression={c}", "model.motion_channels=3",
                               f"trajectory.mode={mode}", f"train.steps={steps}"],
                              None)  # (the flow images' RGB)
    return v


def train(name: str, sets: list[str], init: str, a: argparse.Namespace) -> Path:
    out = a.out / name
    done = out / "done"
    if done.exists():
        return out
    cmd = [sys.executable, "-m", "vidiff.cli", "train", str(RECIPE),
           "--set", f"train.out_dir={out}", "--set", f"train.init_from={init}",
           "--set", f"trajectory.autoencoder={a.trajectory_autoencoder}",
           "--set", f"train.num_threads={a.threads}", "--set", "train.ckpt_every=1000000",
           "--set", "train.log_every=50"]
    for s in sets:
        cmd += ["--set", s]
    print(f"# training {name}", file=sys.stderr, flush=True)
    with open(a.out / f"{name}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, "OMP_NUM_THREADS": str(a.threads)})
    done.touch()
    return out


def evaluate(run: Path, a: argparse.Namespace) -> dict:
    report = run / "eval.json"
    if not report.exists():
        subprocess.run([sys.executable, "-m", "vidiff.cli", "eval", str(run), "--num-videos",
                        str(a.num_videos), "--batch-size", "8", "--seed", "0", "--json",
                        str(report)], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "OMP_NUM_THREADS": str(a.threads)})
    r = json.loads(report.read_text())
    tc = r["trajectory_control"]
    pa = r.get("prompt_adherence", {})
    return {"error": tc["mean_px"], "missing": tc["missing"], "validity": r.get("validity"),
            "colour": pa.get("color"), "shape": pa.get("shape"),
            **{f"{k} px": v for k, v in tc["per_family_px"].items()}}


def table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n## {title}\n")
    cols = ["error", "circle px", "zigzag px", "spiral px", "missing", "validity", "colour",
            "shape"]
    print("| variant | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, r in rows.items():
        cells = [("-" if r.get(c) is None else f"{r[c]:.2f}" if "px" in c or c == "error"
                  else f"{100 * r[c]:.0f}%") for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the base ST-DiT run")
    p.add_argument("--trajectory-autoencoder", type=Path, required=True)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--num-videos", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/tora_ablations"))
    p.add_argument("--mode", choices=("sparse", "dense"), default="sparse",
                   help="what the fuser and compression variants train on")
    p.add_argument("--only", choices=("fusers", "schedule", "compression"), action="append",
                   help="these tables only (repeatable; default all)")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    only = set(a.only or ("fusers", "schedule", "compression"))
    v = variants(a.steps, a.mode)
    groups = {"fusers": [f"{f}-{q}" for f in FUSERS for q in PLACEMENTS],
              "schedule": ["dense-only", "sparse-only", "dense-then-sparse"],
              "compression": ["adanorm-temporal", "compress-avg_pool", "compress-sample"]}
    results: dict[str, dict] = {}
    for g in ("fusers", "schedule", "compression"):
        if g not in only:
            continue
        for name in groups[g]:
            if name in results:
                continue
            sets, start = v[name]
            init = a.base if start is None else train(start, v[start][0], a.base, a)
            results[name] = evaluate(train(name, sets, str(init), a), a)
    print(f"# {a.steps} adapter steps from {a.base}, {a.num_videos} held-out requests each")
    if "fusers" in only:
        table(f"fuser x placement ({a.mode})", {n: results[n] for n in groups["fusers"]})
    if "schedule" in only:
        table(f"training schedule ({2 * a.steps} steps each)",
              {n: results[n] for n in groups["schedule"]})
    if "compression" in only:
        table(f"flow images compressed in time ({a.mode})",
              {{"adanorm-temporal": "trajectory autoencoder", "compress-avg_pool":
                "average pooling", "compress-sample": "frame sampling"}[n]: results[n]
               for n in groups["compression"]})


if __name__ == "__main__":
    main()
