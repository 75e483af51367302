"""Real footage: LVDM's 3D video autoencoder against a per-frame 2D autoencoder with the same
code size, both trained the same number of steps on the first part of each video of
``../shared/data/real`` and measured (PSNR, SSIM) on the held-out last part.

* 3D: configs/lvdm_ae_tiny.yaml's architecture (f_t = 4, f_s = 4, 8 latent channels):
  512 numbers per frame of 64x64x3.
* 2D: the same blocks with every temporal kernel 1 (``temporal_kernel: 1``), f_t = 1,
  f_s = 8, 8 latent channels: also 512 numbers per frame; once at the same widths (a third of
  the 3D parameters) and once wider, with about as many parameters as the 3D one.
* LaMD's MCD-VAE (configs/lamd_vae_tiny.yaml's architecture, L = 16, f_s = 4) with 32 motion
  channels: z_m is also 512 numbers per frame (8,192 a 16-frame window); it is also given each
  window's first frame, as image-to-video is.

Every autoencoder is measured on the held-out part cut to whole 16-frame windows.

    python benchmarks/ae_real_footage.py [--steps 600 --size 64 --test-fraction 0.25]
        [--variants 3d 2d 2d-wide mcd]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.config import load_config
from vidiff.data.datasets import frames_to_tensor, resize_crop
from vidiff.data.video_io import read_video, to_uint8
from vidiff.evaluation.metrics import psnr, ssim
from vidiff.models import load_model
from vidiff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]


class Windows(torch.utils.data.Dataset):
    """Every ``n``-frame window of a list of ``(C, F, H, W)`` tensors."""

    def __init__(self, clips: list[torch.Tensor], n: int):
        self.items = [(i, s) for i, c in enumerate(clips) for s in range(c.shape[1] - n + 1)]
        self.clips, self.n = clips, n

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict:
        i, s = self.items[k]
        return {"video": self.clips[i][:, s:s + self.n]}


def load_split(folder: Path, size: int, test_fraction: float):
    train, test = [], []
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() not in (".mp4", ".avi", ".webm", ".mkv", ".gif"):
            continue
        x = resize_crop(frames_to_tensor(read_video(f)), size)
        cut = int(round(x.shape[1] * (1 - test_fraction)))
        train.append(x[:, :cut])
        test.append(x[:, cut:])
    return train, test


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "real"))
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--out", default="runs/ae_real_footage")
    p.add_argument("--variants", nargs="+", default=["3d", "2d", "2d-wide", "mcd"],
                   choices=["3d", "2d", "2d-wide", "mcd"])
    a = p.parse_args()
    train, test = load_split(Path(a.data), a.size, a.test_fraction)
    n_train = sum(c.shape[1] for c in train)
    n_test = sum(c.shape[1] for c in test)
    print(f"# {len(train)} videos at {a.size}x{a.size}: {n_train} training frames, {n_test} "
          f"held-out frames (last {a.test_fraction:.0%} of each), {a.steps} steps each")
    base = dict(load_config(ROOT / "configs" / "lvdm_ae_tiny.yaml").model)
    mcd = {**load_config(ROOT / "configs" / "lamd_vae_tiny.yaml").model, "motion_channels": 32}
    variants = {
        "3d": ("3D (f_t=4, f_s=4, c=8)", base, "lvdm_ae_tiny"),
        "2d": ("2D per-frame (f_s=8, c=8)", {**base, "temporal_kernel": 1, "temporal_factor": 1,
                                             "spatial_factor": 8}, "lvdm_ae_tiny"),
        "2d-wide": ("2D per-frame, wider (params matched)", {
            **base, "temporal_kernel": 1, "temporal_factor": 1, "spatial_factor": 8,
            "base_channels": 80}, "lvdm_ae_tiny"),
        "mcd": ("MCD-VAE (L=16, f_s=4, d=32) + first frame", mcd, "lamd_vae_tiny"),
    }
    print("| autoencoder | numbers / frame | params (M) | train s | held-out PSNR (dB) | "
          "held-out SSIM |")
    print("|---|---|---|---|---|---|")
    results = {}
    for key in a.variants:
        name, model, recipe = variants[key]
        out = Path(a.out) / key
        cfg = load_config(ROOT / "configs" / f"{recipe}.yaml", [
            f"train.out_dir={out}", f"train.steps={a.steps}", "train.progress=false",
            f"train.ckpt_every={a.steps}", "train.tensorboard=false",
            f"train.warmup_steps={min(100, a.steps // 10)}"])
        cfg.model = model
        t0 = time.perf_counter()
        tr = Trainer(cfg, dataset=Windows(train, a.frames))
        res = tr.fit()
        secs = time.perf_counter() - t0
        ae = load_model(res.checkpoint).eval()  # the EMA weights, as shipped
        ps, ss = [], []
        with torch.no_grad():
            for clip in test:
                L = clip.shape[1] - clip.shape[1] % a.frames
                x = clip[:, :L][None]
                z = ae.encode_chunked(x)
                parts = (ae.reconstruct_chunked(x, z=z) if hasattr(ae, "reconstruct_chunked")
                         else ae.decode_chunked(z))
                rec = torch.cat(list(parts), dim=2)[0]
                ref, got = to_uint8(clip[:, :L]), to_uint8(rec)
                ps.append(psnr(ref, got))
                ss.append(ssim(ref, got))
            code = z[0].numel() / L
        r = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "train_s": secs,
             "code_per_frame": code, "params_M": ae.num_parameters() / 1e6}
        results[name] = r
        print(f"| {name} | {code:.0f} | {r['params_M']:.2f} | {secs:.0f} | {r['psnr']:.2f} | "
              f"{r['ssim']:.3f} |", flush=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
