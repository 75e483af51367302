"""Sampling cost per clip: the latent recipe (LVDM: U-Net on ``f_t x f_s^2``-times fewer
positions, plus one decode) against pixel-space VDM at the same output size.

Three rows for a clip of ``--frames`` x ``--size`` x ``--size``:
* pixel, vdm_tiny's U-Net (``configs/vdm_tiny.yaml``) on the pixels;
* pixel, lvdm_tiny's U-Net on the pixels (the same network as the latent row: the cleanest
  view of what the smaller space saves);
* latent, lvdm_tiny's U-Net on the autoencoder's latents, plus decoding them once.

Cost per clip = steps x (one denoiser evaluation) + decode, each the median of ``--repeats``
timed runs of a batch of ``--batch`` clips, fp32 (as the pipelines sample). Weights are random:
cost does not depend on them.

    python benchmarks/latent_vs_pixel.py [--frames 20 --size 64 --steps 50 --batch 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vidiff.config import load_config
from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig
from vidiff.training import build_model

from unet_speed import median_time  # noqa: E402 - the benchmarks' shared timer (same folder)

ROOT = Path(__file__).resolve().parents[1]


def unet(recipe: str, channels: int, mask: bool | None = None):
    spec = dict(load_config(ROOT / "configs" / recipe).model)
    spec.update(in_channels=channels, out_channels=channels)
    if mask is not None:
        spec["mask_channel"] = mask
    return build_model(spec).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ae_spec = dict(load_config(ROOT / "configs" / "lvdm_ae_tiny.yaml").model)
    ae_spec.pop("type")
    ae = VideoAutoencoder(VideoAutoencoderConfig(**ae_spec)).eval()
    ft, fs = ae.factors
    c = ae.config.latent_channels
    B, F_, S = a.batch, a.frames, a.size
    t = torch.rand(B)
    rows = []
    with torch.no_grad():
        for name, net, shape in [
            ("pixel: vdm_tiny U-Net", unet("vdm_tiny.yaml", 3), (B, 3, F_, S, S)),
            ("pixel: lvdm_tiny U-Net", unet("lvdm_tiny.yaml", 3, mask=False), (B, 3, F_, S, S)),
            ("latent: lvdm_tiny U-Net + decode", unet("lvdm_tiny.yaml", c, mask=False),
             (B, c, F_ // ft, S // fs, S // fs)),
        ]:
            x = torch.randn(shape)
            ev = median_time(lambda: net(x, t), a.repeats)
            dec = 0.0
            if name.startswith("latent"):
                dec = median_time(lambda: ae.decode(x), a.repeats)
            per_clip = (a.steps * ev + dec) / B
            rows.append((name, tuple(shape[1:]), ev / B * 1e3, dec / B * 1e3, per_clip))
    print(f"# clip {F_}x{S}x{S}, {a.steps} steps, batch {B}, fp32, {torch.get_num_threads()} "
          f"threads, median of {a.repeats}; f_t*f_s^2 = {ft * fs * fs}")
    print("| recipe | denoiser input | ms / eval / clip | decode ms / clip | s / clip | "
          "latent saving |")
    print("|---|---|---|---|---|---|")
    lat = rows[-1][4]
    for name, shape, ev, dec, per in rows:
        sav = "" if name.startswith("latent") else f"{per / lat:.1f}x"
        print(f"| {name} | {'x'.join(map(str, shape))} | {ev:.1f} | {dec:.1f} | {per:.2f} | {sav} |")


if __name__ == "__main__":
    main()
