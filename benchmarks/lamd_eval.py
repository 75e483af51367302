"""LaMD on held-out Moving Shapes (64x64, 16 frames, one or two objects), measured exactly with
the analytic detector:

* ``recon``: MCD-VAE reconstruction PSNR / SSIM;
* ``swap``: decomposition - clip A's first frame decoded with clip B's motion latent. A's object
  (another colour and shape) is drawn where B's starts: ``z_m`` is a spatial map of motion, so
  motion belongs to places. Scored: A's colour and shape kept, moving in B's direction (within
  30 degrees over the first 3 steps), and how often B's colour or shape leaks in;
* ``i2v``: the generated first frame against the given image (PSNR), validity, identity kept,
  smoothness against real clips, and for one image, the spread of 16 samples' headings;
* ``ti2v``: one-object images with "a <colour> <shape> moving <direction>" for the 8 directions;
  the heading is right within 45 degrees;
* ``ks``: I2V quality against the number of sampling steps K.

    python benchmarks/lamd_eval.py runs/lamd_tiny [--vae runs/lamd_vae_tiny] [--parts recon
        swap i2v ti2v ks] [--clips 64] [--ks 10 25 50 200]
    python benchmarks/lamd_eval.py --parts swap --vae runs/beta_a runs/beta_b ...  (a β sweep)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.data.datasets import frames_to_tensor
from vidiff.data.video_io import to_uint8
from vidiff.data.moving_shapes import (PALETTE, SHAPES, MovingShapesConfig, generate_clip,
                                       render_frame)
from vidiff.evaluation.detector import detect_video
from vidiff.evaluation.i2v import (DIRECTION_ANGLES, angle_difference, circular_spread,
                                   evaluate_i2v, heading)
from vidiff.evaluation.metrics import motion_smoothness, psnr, ssim, tracks_by_color
from vidiff.pipelines import DiffusionPipeline
from vidiff.training.checkpoint import load_autoencoder

HELD_OUT = 900_000_000  # data seeds far from any training index
CFG = MovingShapesConfig(size=64, num_frames=16, min_objects=1, max_objects=2)
ONE = MovingShapesConfig(size=64, num_frames=16, min_objects=1, max_objects=1)


def batches(xs: list, n: int):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def recon(vae, clips: int) -> dict:
    ps, ss = [], []
    for group in batches([generate_clip(CFG, HELD_OUT + i).video for i in range(clips)], 8):
        x = torch.stack([frames_to_tensor(v) for v in group])
        with torch.no_grad():
            rec, _ = vae(x, sample=False)
        for v, r in zip(group, rec):
            got = to_uint8(r.float())
            ps.append(psnr(v, got))
            ss.append(ssim(v, got))
    return {"psnr": float(np.mean(ps)), "worst_psnr": float(np.min(ps)),
            "ssim": float(np.mean(ss))}


def swap_pairs(n: int) -> list[tuple[np.ndarray, np.ndarray, str, str, float]]:
    """``(A's first frame, B's clip, A's colour, A's shape, B's heading)``: A's object has
    another colour and shape than B's and starts where B's does."""
    out = []
    for i in range(n):
        b = generate_clip(ONE, HELD_OUT + 10_000 + i)
        rng = np.random.default_rng(i)
        color = str(rng.choice([c for c in PALETTE if c != b.colors[0]]))
        shape = str(rng.choice([s for s in SHAPES if s != b.shapes[0]]))
        cx, cy = b.trajectories[0, 0]
        r = b.sizes[0]
        first = render_frame(64, [(color, shape, r, float(cx), float(cy))])
        d = b.trajectories[0, 3] - b.trajectories[0, 0]
        out.append((first, b.video, color, shape, math.degrees(math.atan2(-d[1], d[0])) % 360))
    return out


def swap(vae, pairs: int) -> dict:
    ok, kept, moved, leak_c, leak_s = [], [], [], [], []
    data = swap_pairs(pairs)
    for group in batches(data, 8):
        imgs = torch.stack([frames_to_tensor(a[None])[:, 0] for a, *_ in group])
        clips = torch.stack([frames_to_tensor(b) for _, b, *_ in group])
        with torch.no_grad():
            out = vae.decode(vae.latents(clips, scaled=False), imgs)
        for (a, b, color, shape, want), x in zip(group, out):
            dets = detect_video(to_uint8(x.float()))
            b_color = detect_video(b[:1])[0][0].color if detect_video(b[:1])[0] else None
            track = [d for d in tracks_by_color(dets).get(color, []) if d is not None]
            shapes = [d.shape for d in track]
            right = len(track) >= len(dets) / 2 and max(set(shapes), key=shapes.count) == shape
            h = heading(dets, color)
            good_dir = h is not None and angle_difference(h, want) <= 30
            kept.append(right)
            moved.append(good_dir)
            ok.append(right and good_dir)
            leak_c.append(b_color is not None and any(d.color == b_color for fr in dets
                                                      for d in fr if d.area >= 10))
            leak_s.append(len(shapes) > 0 and shapes.count(shape) < len(shapes) / 2)
    return {"pairs": pairs, "success": float(np.mean(ok)), "content_kept": float(np.mean(kept)),
            "direction_within_30": float(np.mean(moved)), "leak_color": float(np.mean(leak_c)),
            "leak_shape": float(np.mean(leak_s))}


def first_frames(n: int, cfg: MovingShapesConfig, offset: int) -> list[np.ndarray]:
    return [generate_clip(cfg, HELD_OUT + offset + i).video[0] for i in range(n)]


def generate(pipe, images: list[np.ndarray], steps: int, seed: int = 0, prompts=None,
             guidance: float | None = None) -> list[np.ndarray]:
    vids = []
    for k, group in enumerate(batches(images, 16)):
        g = torch.Generator().manual_seed(seed + k)
        kw = {} if prompts is None else {"prompt": prompts[k * 16:k * 16 + len(group)]}
        x = torch.stack([frames_to_tensor(im[None])[:, 0] for im in group])
        vids += list(pipe(image=x, num_inference_steps=steps, generator=g, progress=False,
                          guidance_scale=guidance, **kw))
    return vids


def real_smoothness(n: int) -> float:
    vals = [motion_smoothness(detect_video(generate_clip(CFG, HELD_OUT + i).video))
            for i in range(n)]
    return float(np.mean([v for v in vals if v is not None]))


def i2v(pipe, clips: int, steps: int) -> dict:
    images = first_frames(clips, CFG, 20_000)
    t0 = time.perf_counter()
    vids = generate(pipe, images, steps)
    secs = (time.perf_counter() - t0) / clips
    m = evaluate_i2v(vids, images, CFG)
    m["smoothness_ratio"] = (m["smoothness"] or float("nan")) / real_smoothness(32)
    one = first_frames(1, ONE, 30_000) * 16
    vids = generate(pipe, one, steps, seed=7)
    color = detect_video(one[0][None])[0][0].color
    angles = [a for v in vids if (a := heading(detect_video(v), color)) is not None]
    m["spread_one_image"] = {**circular_spread(angles), "moving": len(angles)}
    m["seconds_per_clip"] = secs
    return m


def ti2v(pipe, per_direction: int, steps: int, guidance: float | None) -> dict:
    images, prompts, wants, colors = [], [], [], []
    for k, (word, ang) in enumerate(DIRECTION_ANGLES.items()):
        for i in range(per_direction):
            c = generate_clip(ONE, HELD_OUT + 40_000 + 100 * k + i)
            images.append(c.video[0])
            prompts.append(f"a {c.colors[0]} {c.shapes[0]} moving {word}")
            wants.append(ang)
            colors.append(c.colors[0])
    vids = generate(pipe, images, steps, prompts=prompts, guidance=guidance)
    hits = []
    for v, want, color in zip(vids, wants, colors):
        h = heading(detect_video(v), color)
        hits.append(h is not None and angle_difference(h, want) <= 45)
    per = {w: float(np.mean(hits[k * per_direction:(k + 1) * per_direction]))
           for k, w in enumerate(DIRECTION_ANGLES)}
    return {"within_45": float(np.mean(hits)), "videos": len(vids), "per_direction": per}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", help="an image-to-video checkpoint (lamd_tiny)")
    p.add_argument("--vae", nargs="*", help="MCD-VAE checkpoints, or image-to-video checkpoints "
                   "holding one (default: the pipeline's)")
    p.add_argument("--parts", nargs="+", default=["recon", "swap", "i2v", "ti2v", "ks"])
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--steps", type=int, help="K (default: the checkpoint's)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 25, 50, 200])
    p.add_argument("--guidance-scale", type=float)
    p.add_argument("--json", help="write the results here")
    a = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    pipe = DiffusionPipeline.from_pretrained(a.checkpoint) if a.checkpoint else None
    vaes = {v: load_autoencoder(v).eval() for v in a.vae or []}
    if not vaes and pipe is not None:
        vaes = {a.checkpoint: pipe.autoencoder}
    results: dict = {}
    for name, vae in vaes.items():
        if "recon" in a.parts:
            results.setdefault(name, {})["recon"] = r = recon(vae, a.clips)
            print(f"{name}: reconstruction {r['psnr']:.2f} dB (worst {r['worst_psnr']:.1f}), "
                  f"SSIM {r['ssim']:.3f}", flush=True)
        if "swap" in a.parts:
            results.setdefault(name, {})["swap"] = r = swap(vae, a.clips)
            print(f"{name}: motion swap {r['success']:.1%} (content kept {r['content_kept']:.1%}"
                  f", direction {r['direction_within_30']:.1%}); leaks: B's colour "
                  f"{r['leak_color']:.1%}, B's shape {r['leak_shape']:.1%}", flush=True)
    steps = a.steps or (pipe.experiment.sample.steps if pipe else None)
    if pipe is not None and "i2v" in a.parts:
        results["i2v"] = r = i2v(pipe, a.clips, steps)
        print(f"I2V (K={steps}): {json.dumps(r)}", flush=True)
    if pipe is not None and "ti2v" in a.parts:
        results["ti2v"] = r = ti2v(pipe, max(1, a.clips // 8), steps, a.guidance_scale)
        print(f"TI2V (K={steps}): {json.dumps(r)}", flush=True)
    if pipe is not None and "ks" in a.parts:
        print("| K | frame-0 PSNR (dB) | validity | identity | smoothness | s / clip |")
        print("|---|---|---|---|---|---|")
        images = first_frames(a.clips, CFG, 20_000)
        for k in a.ks:
            t0 = time.perf_counter()
            vids = generate(pipe, images, k)
            s = (time.perf_counter() - t0) / len(images)
            m = evaluate_i2v(vids, images, CFG)
            results.setdefault("ks", {})[k] = {**m, "seconds_per_clip": s}
            print(f"| {k} | {m['frame0_psnr']:.2f} | {m['validity']:.1%} | {m['identity']:.1%} | "
                  f"{m['smoothness'] or float('nan'):.2f} | {s:.3f} |", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
