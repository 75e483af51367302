"""Samplers against exact denoisers (the figures behind tests/test_samplers.py).

1. A 2-D Gaussian mixture with its closed-form denoiser: relative error of the sample mean
   (|dm| / sqrt(tr S)) and covariance (||dS||_F / ||S||_F) for each sampler and schedule.
2. A joint Gaussian "video" of 4 frames (AR(1), rho = 0.95), frames 0-1 given: error of the
   conditional mean and covariance of frames 2-3 for the replacement method and for VDM's
   reconstruction guidance at several weights w_r.

    python benchmarks/sampler_exactness.py [--n 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_samplers import GMM, _moments_error, conditional_errors  # noqa: E402

from vidiff.diffusion import ScheduleConfig, build_schedule, sample  # noqa: E402

CASES = [("ddpm", 1000, {}), ("ddim", 50, {}), ("ddim", 50, {"eta": 1.0}),
         ("ancestral", 100, {"gamma": 0.5}), ("pc", 100, {"delta": 0.1}),
         ("dpmpp_2m", 20, {}), ("dpmpp_2m", 10, {})]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    a = p.parse_args()
    print("## 2-D Gaussian mixture, exact denoiser (bar: both errors < 5%)")
    print("| schedule | sampler | steps | options | mean err | cov err | seconds |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("linear", "cosine", "cosine_logsnr"):
        s = build_schedule(ScheduleConfig(kind=kind))
        for name, steps, kw in CASES:
            g = torch.Generator().manual_seed(1)
            t0 = time.perf_counter()
            x = sample(name, GMM.denoiser(s), s, torch.randn(a.n, 2, generator=g), steps,
                       generator=g, **kw)
            em, ec = _moments_error(x, GMM)
            print(f"| {kind} | {name} | {steps} | {kw or ''} | {em:.2%} | {ec:.2%} | "
                  f"{time.perf_counter() - t0:.1f} |")
    print()
    print("## Joint Gaussian, frames 0-1 given, frames 2-3 sampled (ancestral, 100 steps)")
    print("| method | w_r | cond. mean err | cond. cov err |")
    print("|---|---|---|---|")
    em, ec = conditional_errors("replacement")
    print(f"| replacement | - | {em:.3f} | {ec:.3f} |")
    for w in (1.0, 2.0, 4.0, 8.0):
        em, ec = conditional_errors("reconstruction", weight=w)
        print(f"| reconstruction guidance | {w:g} | {em:.3f} | {ec:.3f} |")


if __name__ == "__main__":
    main()
