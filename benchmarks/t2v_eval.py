"""Text-to-video checkpoints on Moving Shapes prompts, side by side: prompt adherence (colour,
shape, direction where the model saw text with motion; held-out combinations apart), validity,
motion smoothness against real clips, object speed, and whether fps changes the speed.

    python benchmarks/t2v_eval.py t2v_tiny runs/t2v_tiny_scratch/checkpoints/step_002000 \
        --prompts 64 --steps 40 --guidance-scale 3 --fps-check

Prints one markdown table (one row per checkpoint) and writes the full reports as JSON with
``--json``. Targets of the text-to-video issue: colour >= 90%, shape >= 75%, validity >= 85%,
smoothness within 2x of real clips, mean speed >= half the real clips', speed at fps 4 vs 16
>= 2x apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from vidiff.cli.base import load_pipeline
from vidiff.cli.evaluate import text_with_motion
from vidiff.data.captions import prompt_set
from vidiff.evaluation import evaluate_against_reference, moving_shapes_config, reference_clips
from vidiff.evaluation.adherence import mean_speed, prompt_adherence


def sample(pipe, prompts, fps, args):
    takes_fps = "fps" in pipe.model.accepted_conditions
    vids = []
    for i in range(0, len(prompts), args.batch):
        g = torch.Generator().manual_seed(args.seed + i)
        vids += list(pipe(prompt=prompts[i:i + args.batch], num_inference_steps=args.steps,
                          guidance_scale=args.guidance_scale, generator=g, progress=False,
                          sampler=args.sampler, **({"fps": fps} if takes_fps else {})))
    return vids


def evaluate(ckpt: str, args) -> dict:
    pipe = load_pipeline(ckpt, "cpu")
    motion = text_with_motion(pipe.experiment)
    prompts = prompt_set(args.prompts, seed=args.seed, motion=motion)
    cfg = moving_shapes_config(pipe.experiment)
    real_cfg = dataclasses.replace(cfg, fps_choices=None)  # real clips at 8 fps
    t0 = time.perf_counter()
    vids = sample(pipe, prompts, 8.0, args)
    rep = {"checkpoint": ckpt, "text_with_motion": motion,
           "sampling_seconds": round(time.perf_counter() - t0, 1),
           "adherence": prompt_adherence(vids, prompts, motion=motion),
           **evaluate_against_reference(vids, real_cfg, num_reference=64),
           "mean_speed": mean_speed(vids),
           "real_mean_speed": mean_speed(reference_clips(real_cfg, 64))}
    if args.fps_check and "fps" in pipe.model.accepted_conditions:
        slow, fast = sample(pipe, prompts, 4.0, args), sample(pipe, prompts, 16.0, args)
        rep["speed_fps4"], rep["speed_fps16"] = mean_speed(slow), mean_speed(fast)
    return rep


def pct(x):
    return "—" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--guidance-scale", type=float, default=3.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fps-check", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    reports = [evaluate(c, args) for c in args.checkpoints]
    print("| checkpoint | colour (seen / held-out) | shape (seen / held-out) | direction | "
          "validity | smoothness ratio | speed px/frame (real) | speed fps 4 / 16 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in reports:
        a = r["adherence"]
        fps = (f"{r['speed_fps4']:.2f} / {r['speed_fps16']:.2f} "
               f"({r['speed_fps4'] / max(r['speed_fps16'], 1e-9):.1f}x)"
               if r.get("speed_fps4") and r.get("speed_fps16") else "—")
        print(f"| {r['checkpoint']} | {pct(a['color'])} ({pct(a['seen']['color'])} / "
              f"{pct(a['held_out']['color'])}) | {pct(a['shape'])} ({pct(a['seen']['shape'])} / "
              f"{pct(a['held_out']['shape'])}) | {pct(a['direction'])} | {pct(r['validity'])} | "
              f"{r.get('smoothness_ratio') or float('nan'):.2f} | "
              f"{r['mean_speed'] or 0:.2f} ({r['real_mean_speed']:.2f}) | {fps} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(reports, f, indent=2)


if __name__ == "__main__":
    main()
