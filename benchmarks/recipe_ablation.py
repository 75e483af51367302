"""Which recipe makes the tiny pixel VDM converge fastest on this CPU?

Trains each variant of configs/vdm_tiny.yaml for the same number of steps (same seed, model,
data and batch), then samples 32 clips (DDIM-50) from its EMA weights and reports the
Moving Shapes metrics. Variants: the probe from the foundation issue (linear-beta, eps,
uniform weighting, lr 2e-4), and the schedule / parameterisation / weighting / lr changes one at
a time up to the shipped recipe (cosine, v, min-SNR-5, lr 1e-3).

    python benchmarks/recipe_ablation.py [--steps 600 --out runs/ablation]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vidiff.config import load_config
from vidiff.data.moving_shapes import generate_clip
from vidiff.evaluation import evaluate_videos
from vidiff.pipelines import VideoDiffusionPipeline
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "probe: linear, eps, uniform, lr 2e-4": ["diffusion.schedule.kind=linear",
                                             "diffusion.prediction=eps",
                                             "diffusion.weighting=uniform", "train.lr=2e-4"],
    "cosine, eps, uniform, lr 1e-3": ["diffusion.prediction=eps", "diffusion.weighting=uniform"],
    "cosine, v, uniform, lr 1e-3": ["diffusion.weighting=uniform"],
    "cosine, v, min-SNR-5, lr 1e-3 (shipped)": [],
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--only", nargs="*", help="run only variants whose name contains these")
    a = p.parse_args()
    rows = []
    for name, sets in VARIANTS.items():
        if a.only and not any(o in name for o in a.only):
            continue
        out = Path(a.out) / name.split(":")[0].replace(" ", "_").replace(",", "")
        cfg = load_config(ROOT / "configs" / "vdm_tiny.yaml", sets + [
            f"train.out_dir={out}", f"train.steps={a.steps}", f"train.ckpt_every={a.steps}",
            "train.progress=false", "train.tensorboard=false", "train.min_lr_ratio=1.0"])
        t0 = time.perf_counter()
        res = Trainer(cfg).fit(resume=False)
        train_s = time.perf_counter() - t0
        pipe = VideoDiffusionPipeline.from_pretrained(res.checkpoint)
        vids = pipe(num_videos=a.samples, num_inference_steps=50, sampler="ddim",
                    generator=torch.Generator().manual_seed(0), progress=False)
        ms = cfg.data.moving_shapes
        m = evaluate_videos(list(vids), ms)
        ref = evaluate_videos([generate_clip(ms, 10 ** 6 + i).video for i in range(64)], ms)
        row = {"variant": name, "steps": a.steps, "train_min": train_s / 60,
               "final_loss": sum(res.losses[-50:]) / len(res.losses[-50:]),
               "validity": m.validity, "smoothness_px": m.motion_smoothness,
               "real_smoothness_px": ref.motion_smoothness,
               "consistency": m.temporal_consistency}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n| variant | steps | train (min) | validity | smoothness (px; real {rows[0]['real_smoothness_px']:.2f}) | consistency |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        sm = f"{r['smoothness_px']:.2f}" if r["smoothness_px"] is not None else "n/a"
        co = f"{r['consistency']:.2f}" if r["consistency"] is not None else "n/a"
        print(f"| {r['variant']} | {r['steps']} | {r['train_min']:.1f} | {r['validity']:.1%} | {sm} | {co} |")


if __name__ == "__main__":
    main()
