"""``vidiff demo``: sample Moving Shapes clips from the shipped checkpoint and measure them."""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

from .args import AUTOGUIDANCE, SAMPLING, add_options, sampling_kwargs, sampling_report
from .base import Command, load_pipeline, random_labels


def DEMO_CHECKPOINT() -> Path:
    """The small checkpoint shipped in the package (trained with configs/vdm_tiny.yaml)."""
    return Path(str(resources.files("vidiff") / "assets" / "vdm_tiny"))


def T2V_CHECKPOINT() -> Path:
    """The shipped text-to-video checkpoint (Make-A-Video's two stages, configs/t2v_tiny.yaml)."""
    return Path(str(resources.files("vidiff") / "assets" / "t2v_tiny"))


def I2V_CHECKPOINT() -> Path:
    """The shipped image-to-video checkpoint (LaMD: MCD-VAE + motion generator,
    configs/lamd_vae_tiny.yaml and configs/lamd_tiny.yaml)."""
    return Path(str(resources.files("vidiff") / "assets" / "lamd_tiny"))


def TORA_CHECKPOINT() -> Path:
    """The shipped trajectory-controlled checkpoint (Tora: ST-DiT + trajectory adapter,
    configs/tora_base_tiny.yaml, tora_tiny_stage1.yaml and tora_tiny.yaml)."""
    return Path(str(resources.files("vidiff") / "assets" / "tora_tiny"))


#: the demo's image-to-video requests: (Moving Shapes seed of the first frame, direction or
#: None); each image is animated without a prompt and with "a <colour> <shape> moving <dir>"
DEMO_I2V = ((11, "up-left"), (23, "right"), (37, "down"))

#: what the demo asks the text-to-video model for (the last two are held-out combinations)
DEMO_PROMPTS = ("a green square", "a magenta circle", "a cyan triangle", "a yellow circle",
                "a red triangle", "a blue circle")


class Demo(Command):
    name = "demo"
    help = "sample Moving Shapes clips from the shipped checkpoint"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", default="demo_out", help="output folder")
        add_options(p, "--num-videos", *SAMPLING, *AUTOGUIDANCE, "--seed",
                    num_videos={"default": 16},
                    sampler={"help": "default: the checkpoint's own (ancestral for the shipped "
                                     "one)"})
        p.add_argument("--checkpoint", help="use another checkpoint than the shipped one")
        p.add_argument("--no-text", action="store_true",
                       help="skip the text-to-video part (t2v_tiny)")
        p.add_argument("--no-i2v", action="store_true",
                       help="skip the image-to-video part (lamd_tiny)")
        p.add_argument("--no-trajectory", action="store_true",
                       help="skip the trajectory-control part (tora_tiny)")

    def run(self, a: argparse.Namespace) -> int:
        import torch

        from ..data.sample_outputs import write_sample_outputs
        from ..evaluation import evaluate_against_reference, expected_counts, moving_shapes_config

        ckpt = a.checkpoint or DEMO_CHECKPOINT()
        pipe = load_pipeline(str(ckpt), "cpu")
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        g = torch.Generator().manual_seed(a.seed)
        t0 = time.perf_counter()
        lab = random_labels(pipe, a.num_videos, g)
        vids = pipe(num_videos=a.num_videos, class_labels=lab, generator=g, progress=True,
                    **sampling_kwargs(a))
        dt = time.perf_counter() - t0
        files = write_sample_outputs(list(vids), out / "demo.mp4", pipe.experiment.sample.fps)
        labels = None if lab is None else lab.tolist()
        m = evaluate_against_reference(list(vids), moving_shapes_config(pipe.experiment),
                                       expected_counts(pipe.experiment, labels or []),
                                       num_reference=64, smoothness_ratio=False)
        run = sampling_report(a, pipe.experiment.sample)
        metrics = {**m, **run, "class_labels": labels, "sampling_seconds": round(dt, 2),
                   "checkpoint": str(ckpt)}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        files["metrics"] = str(out / "metrics.json")
        print(f"sampled {len(vids)} clips of {vids.shape[1]}x{vids.shape[2]}x{vids.shape[3]} in "
              f"{dt:.1f}s ({run['sampler']}, {run['steps']} steps)")
        print(f"validity {m['validity']:.1%}  motion smoothness "
              f"{m['motion_smoothness'] or float('nan'):.3f}px (real clips: "
              f"{m['real_motion_smoothness']:.3f}px)  temporal consistency "
              f"{m['temporal_consistency'] or float('nan'):.3f}")
        for k, v in files.items():
            print(f"{k:>14}: {v}")
        if not a.no_text:
            metrics["text_to_video"] = text_to_video(out, a.seed)
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if not a.no_i2v:
            metrics["image_to_video"] = image_to_video(out, a.seed)
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if not a.no_trajectory:
            metrics["trajectory_control"] = trajectory_control(out, a.seed)
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        return 0


def _text_pipeline(path: Path, what: str):
    """A shipped text-conditioned pipeline with its text encoder loaded, or ``{"skipped":
    why}`` when the text extra is not installed."""
    try:
        pipe = load_pipeline(str(path), "cpu")
        pipe.condition_encoders()  # loads the text encoder
    except ImportError as e:
        print(f"{what} skipped: {e}")
        return {"skipped": str(e)}
    return pipe


def text_to_video(out: Path, seed: int) -> dict:
    """Sample :data:`DEMO_PROMPTS` from the shipped ``t2v_tiny`` (a labelled contact sheet,
    one row a prompt) and measure how well the clips follow them."""
    import torch

    from ..data.sample_outputs import write_sample_outputs
    from ..evaluation.adherence import mean_speed, prompt_adherence

    pipe = _text_pipeline(T2V_CHECKPOINT(), "text-to-video")
    if isinstance(pipe, dict):
        return pipe
    prompts = list(DEMO_PROMPTS)
    t0 = time.perf_counter()
    vids = pipe(prompt=prompts, generator=torch.Generator().manual_seed(seed), progress=True)
    dt = time.perf_counter() - t0
    files = write_sample_outputs(list(vids), out / "t2v.mp4", pipe.experiment.sample.fps,
                                 labels=prompts)
    adh = prompt_adherence(list(vids), prompts, motion=False)
    print(f"text-to-video: {len(prompts)} prompts in {dt:.1f}s; colour adherence "
          f"{adh['color']:.0%}, shape {adh['shape']:.0%}, mean speed "
          f"{mean_speed(list(vids)) or 0:.2f} px/frame")
    for k, v in files.items():
        print(f"{k:>14}: {v}")
    return {"prompts": prompts, "adherence": adh, "mean_speed": mean_speed(list(vids)),
            "sampling_seconds": round(dt, 2), **{f"t2v_{k}": v for k, v in files.items()}}


def image_to_video(out: Path, seed: int) -> dict:
    """Animate the first frames of :data:`DEMO_I2V` with the shipped ``lamd_tiny``: each once
    without a prompt and once with a direction prompt (a labelled contact sheet), measured."""
    import numpy as np
    import torch

    from ..data.moving_shapes import MovingShapesConfig, generate_clip
    from ..data.sample_outputs import write_sample_outputs
    from ..evaluation.i2v import evaluate_i2v

    pipe = _text_pipeline(I2V_CHECKPOINT(), "image-to-video")
    if isinstance(pipe, dict):
        return pipe
    cfg = MovingShapesConfig(size=pipe.image_size, num_frames=16, min_objects=1, max_objects=1)
    clips = [generate_clip(cfg, 10 ** 9 + s) for s, _ in DEMO_I2V]
    images = np.stack([c.video[0] for c in clips])
    prompts = [f"a {c.colors[0]} {c.shapes[0]} moving {d}" for c, (_, d) in zip(clips, DEMO_I2V)]
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    plain = pipe(image=images, generator=g, progress=True)
    texted = pipe(image=images, prompt=prompts, generator=g, progress=True)
    dt = time.perf_counter() - t0
    vids = [v for pair in zip(plain, texted) for v in pair]
    labels = [t for p in prompts for t in ("(no prompt)", p)]
    files = write_sample_outputs(vids, out / "i2v.mp4", pipe.experiment.sample.fps, labels)
    m = evaluate_i2v(vids, [im for im in images for _ in range(2)], cfg)
    print(f"image-to-video: {len(vids)} clips in {dt:.1f}s; first frame "
          f"{m['frame0_psnr']:.1f} dB, validity {m['validity']:.0%}, identity kept "
          f"{m['identity']:.0%}")
    for k, v in files.items():
        print(f"{k:>14}: {v}")
    return {"prompts": labels, **m, "sampling_seconds": round(dt, 2),
            **{f"i2v_{k}": v for k, v in files.items()}}


def trajectory_control(out: Path, seed: int) -> dict:
    """Move one object along each of three held-out paths (a circle arc, a zigzag, a spiral)
    with the shipped ``tora_tiny``: the clips (a labelled contact sheet), the paths drawn over
    their frames (``tora_paths.png``), and the trajectory error."""
    import torch
    from PIL import Image

    from ..data.sample_outputs import contact_sheet, draw_paths, write_sample_outputs
    from ..evaluation.trajectory_eval import trajectory_report, trajectory_requests

    pipe = _text_pipeline(TORA_CHECKPOINT(), "trajectory control")
    if isinstance(pipe, dict):
        return pipe
    frames, size = pipe.clip_size
    requests = trajectory_requests(3, frames, size, seed)
    prompts = [r[0] for r in requests]
    t0 = time.perf_counter()
    vids = list(pipe(prompt=prompts, trajectories=[r[3][None] for r in requests],
                     generator=torch.Generator().manual_seed(seed), progress=True))
    dt = time.perf_counter() - t0
    labels = [f"{p} ({r[2]})" for p, r in zip(prompts, requests)]
    files = write_sample_outputs(vids, out / "tora.mp4", pipe.experiment.sample.fps, labels)
    sheet = out / "tora_paths.png"
    Image.fromarray(contact_sheet([draw_paths(v, r[3][None]) for v, r in zip(vids, requests)],
                                  scale=1, labels=labels)).save(sheet)
    files["paths"] = str(sheet)
    m = trajectory_report(vids, requests, by_color=True)
    print(f"trajectory control: {len(vids)} clips in {dt:.1f}s; trajectory error "
          f"{m['mean_px']:.1f} px (object missing in {m['missing']:.0%} of frames)")
    for k, v in files.items():
        print(f"{k:>14}: {v}")
    return {"prompts": labels, "trajectory_error_px": m["mean_px"], "missing": m["missing"],
            "per_clip_px": m["per_clip_px"], "sampling_seconds": round(dt, 2),
            **{f"tora_{k}": v for k, v in files.items()}}
