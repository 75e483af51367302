"""LVDM long-video ablation on Moving Shapes: how validity and motion smoothness hold up over
1,024 frames, per 64-frame segment, for

* ``ar``            - plain autoregressive extension (given latents clean, no guidance);
* ``ar+perturb``    - + conditional latent perturbation (given latents noised to ``s``);
* ``ar+perturb+ug`` - + unconditional guidance (``w``);
* ``hierarchical``  - key latents (every 2nd) autoregressively by the key-frame model, then the
  latents in between by interpolation (with the same ``s`` and ``w``);

plus peak memory (max RSS of a fresh process) at 256 and at 1,024 frames, which must stay
within 10% of each other: frames are decoded chunk by chunk and streamed to the file.

Each mode samples ``--videos`` videos as one batch; a segment's validity is the fraction of
valid frames over all of them (a single 64-frame segment of one video is far too noisy to
compare modes), its smoothness the mean over the videos where it is defined.

    python benchmarks/long_video.py --checkpoint runs/lvdm_tiny --key-checkpoint runs/lvdm_key_tiny
        [--frames 1024 --segment 64 --steps 50 --sampler ancestral --s 0.1 --w 1.0]

Videos are written losslessly (FFV1 .mkv) under ``--out`` and measured from the files.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

MODES = {
    "ar": dict(mode="autoregressive", cond_t=0.0, uncond_weight=0.0),
    "ar+perturb": dict(mode="autoregressive", cond_t="s", uncond_weight=0.0),
    "ar+perturb+ug": dict(mode="autoregressive", cond_t="s", uncond_weight="w"),
    "hierarchical": dict(mode="hierarchical", cond_t="s", uncond_weight="w"),
}


def generate(a, name: str, frames: int, out: Path) -> dict:
    import torch

    from vidiff.pipelines import VideoDiffusionPipeline
    from vidiff.pipelines.long_video import generate_long
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = MODES[name]
    pipe = VideoDiffusionPipeline.from_pretrained(a.checkpoint)
    if spec["mode"] == "hierarchical" and a.key_checkpoint:
        pipe.attach_key_pipeline(a.key_checkpoint)
    cond_t = a.s if spec["cond_t"] == "s" else spec["cond_t"]
    w = a.w if spec["uncond_weight"] == "w" else spec["uncond_weight"]
    t0 = time.perf_counter()
    res = generate_long(pipe, frames, out, mode=spec["mode"], context=a.context,
                        stride=a.stride if pipe.key_pipeline is not None else None,
                        cond_t=cond_t, uncond_weight=w, progress=False, num_videos=a.child_videos,
                        generator=torch.Generator().manual_seed(a.seed),
                        num_inference_steps=a.steps, sampler=a.sampler)
    res["seconds"] = time.perf_counter() - t0
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def run_child(a, name: str, frames: int, out: Path, videos: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--child-frames", str(frames),
           "--child-out", str(out), "--child-videos", str(videos)] + a.passthrough
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def segments(paths: list[str], seg: int, ms_cfg) -> list[tuple[float, float | None]]:
    """Per ``seg``-frame segment: (valid fraction of all videos' frames, mean smoothness)."""
    from vidiff.data.video_io import read_video
    from vidiff.evaluation.metrics import evaluate_videos
    vids = [read_video(p) for p in paths]
    out = []
    for s in range(0, min(len(v) for v in vids) - seg + 1, seg):
        ms = [evaluate_videos([v[s:s + seg]], ms_cfg) for v in vids]
        sm = [m.motion_smoothness for m in ms if m.motion_smoothness is not None]
        out.append((sum(m.validity for m in ms) / len(ms), sum(sm) / len(sm) if sm else None))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="runs/lvdm_tiny")
    p.add_argument("--key-checkpoint", help="default: the key model the checkpoint bundles")
    p.add_argument("--frames", type=int, default=1024)
    p.add_argument("--segment", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--sampler", default="ancestral")
    p.add_argument("--context", type=int, default=2, help="given latent frames a window")
    p.add_argument("--stride", type=int, default=2, help="hierarchical: latent key stride")
    p.add_argument("--s", type=float, default=0.1, help="perturbation level of given latents")
    p.add_argument("--w", type=float, default=1.0, help="unconditional guidance weight")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--videos", type=int, default=4, help="videos per mode (one batch)")
    p.add_argument("--threads", type=int)
    p.add_argument("--modes", nargs="*", default=list(MODES))
    p.add_argument("--memory-frames", type=int, nargs="*", default=[256, 1024])
    p.add_argument("--out", default="runs/long_video_bench")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-frames", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--child-videos", type=int, default=1, help=argparse.SUPPRESS)
    a, _ = p.parse_known_args()
    if a.child:
        print(json.dumps(generate(a, a.child, a.child_frames, Path(a.child_out))))
        return
    a.passthrough = [x for x in sys.argv[1:]]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    from vidiff.data.moving_shapes import MovingShapesConfig
    from vidiff.pipelines import VideoDiffusionPipeline
    exp = VideoDiffusionPipeline.from_pretrained(a.checkpoint).experiment
    from vidiff.data.latents import cache_source
    ms = cache_source(exp.data).get("moving_shapes") if exp.data.kind == "latents" else None
    ms_cfg = MovingShapesConfig(**ms) if ms else exp.data.moving_shapes

    print(f"# {a.videos} videos x {a.frames} frames, {a.segment}-frame segments, {a.sampler} "
          f"{a.steps} steps, context {a.context}, s={a.s}, w={a.w}, seed {a.seed}")
    mem = {}
    for n in a.memory_frames:
        r = run_child(a, "ar+perturb", n, out / f"mem_{n}.mkv")
        mem[n] = r
        print(f"# memory: {n} frames -> peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"{r['seconds']:.0f} s", flush=True)
    if len(mem) >= 2:
        lo, hi = min(mem), max(mem)
        print(f"# peak RSS at {hi} frames / at {lo} frames = "
              f"{mem[hi]['peak_rss_mb'] / mem[lo]['peak_rss_mb']:.3f}")
    table = {}
    for name in a.modes:
        path = out / f"{name}.mkv"
        r = run_child(a, name, a.frames, path, a.videos)
        table[name] = (segments(r["paths"], a.segment, ms_cfg), r)
        print(f"# {name}: {r['frames']} frames in {r['seconds']:.0f} s", flush=True)
    names = list(table)
    nseg = min(len(v[0]) for v in table.values())
    print("\nvalidity / motion smoothness (px) per segment")
    print("| frames | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i in range(nseg):
        cells = []
        for n in names:
            v, sm = table[n][0][i]
            cells.append(f"{v:.0%} / {'-' if sm is None else f'{sm:.2f}'}")
        print(f"| {i * a.segment}-{(i + 1) * a.segment - 1} | " + " | ".join(cells) + " |")
    print("| last / first validity | " + " | ".join(
        f"{table[n][0][nseg - 1][0] / max(table[n][0][0][0], 1e-9):.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
