"""PSNR of a trained video autoencoder on held-out Moving Shapes clips (the LVDM bar: >= 32 dB
at 64x64 with f_s = 4, f_t = 4). Held-out = a data seed the recipe never trains on.

    python benchmarks/ae_moving_shapes.py runs/lvdm_ae_tiny [--clips 32 --seed 12345]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vidiff.data.datasets import MovingShapesDataset
from vidiff.data.moving_shapes import MovingShapesConfig
from vidiff.evaluation.metrics import psnr, ssim
from vidiff.models import load_model
from vidiff.training.checkpoint import resolve_checkpoint


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--clips", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--seed", type=int, default=12345)
    a = p.parse_args()
    ae = load_model(resolve_checkpoint(a.checkpoint)).eval()
    ds = MovingShapesDataset(MovingShapesConfig(size=a.size, num_frames=a.frames, min_objects=1,
                                                max_objects=2), seed=a.seed)

    def u8(t: torch.Tensor) -> np.ndarray:
        return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
    ps, ss = [], []
    with torch.no_grad():
        for i in range(a.clips):
            x = ds[i]["video"][None]
            rec = torch.cat(list(ae.decode_chunked(ae.encode_chunked(x))), dim=2)
            ps.append(psnr(u8(x[0]), u8(rec[0])))
            ss.append(ssim(u8(x[0]), u8(rec[0])))
    print(f"{a.clips} held-out clips {a.frames}x{a.size}x{a.size}: PSNR {np.mean(ps):.2f} dB "
          f"(min {np.min(ps):.2f}), SSIM {np.mean(ss):.3f}")


if __name__ == "__main__":
    main()
