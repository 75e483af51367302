"""Sampling cost of one 16x64x64 clip: LaMD (a 2D U-Net over the motion latent, then the MCD-VAE
decoder) against pixel-space VDM and latent LVDM, each with its shipped tiny recipe's networks
at that output size, side by side in one run. FLOPs of one denoiser call (torch's flop counter)
and median CPU times; a clip is K denoiser calls (no guidance) plus decoding.

    python benchmarks/lamd_cost.py [--steps 50 --repeats 5 --threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidiff.config import load_config
from vidiff.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def model(recipe: str, **changes):
    spec = dict(load_config(ROOT / "configs" / recipe).model)
    return build_model({**spec, **changes}).eval()


def flops(fn) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t = torch.full((1,), 0.5)
    vdm = model("vdm_tiny.yaml")
    lvdm, lvdm_ae = model("lvdm_tiny.yaml"), model("lvdm_ae_tiny.yaml")
    dmg, mcd = model("lamd_tiny.yaml"), model("lamd_vae_tiny.yaml")
    x_pix = torch.randn(1, 3, 16, 64, 64)
    z_lvdm = torch.randn(1, 8, 4, 16, 16)
    z_m, img = torch.randn(1, 4, 16, 16), torch.randn(1, 3, 64, 64)
    ctx = torch.randn(1, 24, 384)
    content = mcd.content(img).detach()
    systems = {
        "VDM (pixels 3x16x64x64)": (lambda: vdm(x_pix, t), None),
        "LVDM (latents 8x4x16x16)": (lambda: lvdm(z_lvdm, t), lambda: lvdm_ae.decode(z_lvdm)),
        "LaMD (motion 4x16x16)": (lambda: dmg(z_m, t, content=content, context=ctx),
                                  lambda: mcd.decode(z_m, img)),
    }
    print(f"# one 16x64x64 clip, K = {a.steps} steps, {a.threads} threads, median of "
          f"{a.repeats}")
    print("| system | GFLOPs / call | call FLOPs vs pixel | ms / call | decode ms | s / clip | "
          "clip FLOPs vs pixel | clip time vs pixel |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    with torch.no_grad():
        for name, (call, decode) in systems.items():
            ms = seconds(call, a.repeats) * 1e3
            dec = seconds(decode, a.repeats) * 1e3 if decode else 0.0
            clip = a.steps * ms / 1e3 + dec / 1e3
            fc = flops(call)
            total = a.steps * fc + (flops(decode) if decode else 0)
            base = base or (total, clip, fc)
            print(f"| {name} | {fc / 1e9:.2f} | {base[2] / fc:.0f}x lower | {ms:.1f} | "
                  f"{dec:.1f} | {clip:.2f} | {base[0] / total:.0f}x lower | "
                  f"{base[1] / clip:.0f}x faster |", flush=True)


if __name__ == "__main__":
    main()
