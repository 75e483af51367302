"""Throughput of the training loop and of a pipeline call, through the public API only (so the
same script measures any commit of vidiff): train steps/s of the tiny VDM recipe at a small
size (trainer + task + U-Net + EMA + data), and clips/s of the shipped ``vdm_tiny`` pipeline
(DDIM, no guidance, so the denoiser dominates). Prints one JSON line.

    python benchmarks/loop_speed.py [--steps 5 --repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vidiff.config import load_config
from vidiff.pipelines import VideoDiffusionPipeline
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]


def train_steps_per_s(steps: int, out: str) -> float:
    cfg = load_config(ROOT / "configs" / "vdm_tiny.yaml",
                      ["train.progress=false", "train.tensorboard=false", "train.batch_size=4",
                       f"train.out_dir={out}", "train.ckpt_every=100000"])
    tr = Trainer(cfg)
    tr.train_step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    return steps / (time.perf_counter() - t0)


def sample_clips_per_s(n: int) -> float:
    pipe = VideoDiffusionPipeline.from_pretrained("vdm_tiny")
    kw = dict(num_videos=n, num_inference_steps=10, sampler="ddim", autoguidance_scale=0.0,
              progress=False)
    pipe(**kw, generator=torch.Generator().manual_seed(0))  # warm-up
    t0 = time.perf_counter()
    pipe(**kw, generator=torch.Generator().manual_seed(1))
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        train = statistics.median(train_steps_per_s(a.steps, d) for _ in range(a.repeats))
    sample = statistics.median(sample_clips_per_s(a.videos) for _ in range(a.repeats))
    print(json.dumps({"train_steps_per_s": train, "sample_clips_per_s": sample}))


if __name__ == "__main__":
    main()
