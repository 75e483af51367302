"""``vidiff eval``: Moving Shapes metrics of a checkpoint's samples, a folder of videos, or the
reference clips themselves, against the reference clips."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .args import GUIDANCE, SAMPLING, add_options, like, sampling_kwargs, sampling_report
from .base import CLIError, Command, load_pipeline, random_labels


class Evaluate(Command):
    name = "eval"
    help = "Moving Shapes metrics of a checkpoint, a folder of videos, or 'real' (reference clips)"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("target")
        add_options(p, "--num-videos", "--batch-size", *SAMPLING, *GUIDANCE, "--seed",
                    num_videos={"default": 64}, batch_size={"default": 16})
        p.add_argument("--size", type=like("--size", "data.moving_shapes.size", int), default=32)
        p.add_argument("--num-frames", default=8,
                       type=like("--num-frames", "data.moving_shapes.num_frames", int))
        add_options(p, "--max-objects", "--device")
        p.add_argument("--held-out-paths", action="store_true",
                       help="score trajectory error on the held-out paths also for a text model "
                       "without trajectory control (it gets only the prompts: the no-adapter "
                       "baseline of Tora's comparison)")
        p.add_argument("--json", help="also write the report here")

    def run(self, a: argparse.Namespace) -> int:
        from ..evaluation import evaluate_against_reference

        src = Path(a.target)
        if src.is_dir() and not any((src / f).exists() for f in ("config.json", "latest",
                                                                 "checkpoints")):
            report, vids, cfg, expected = _videos_in(src, a)
        elif a.target == "real":
            report, vids, cfg, expected = _reference(a)
        else:
            report, vids, cfg, expected = _checkpoint_samples(a)
        report.update(evaluate_against_reference(vids, cfg, expected))
        text = json.dumps(report, indent=2)
        print(text)
        if a.json:
            Path(a.json).write_text(text)
        return 0


def _videos_in(src: Path, a: argparse.Namespace):
    """The videos of a folder, measured in the Moving Shapes setting of their size."""
    from ..data.video_io import READABLE_SUFFIXES, VideoReadError, read_video
    from ..evaluation import moving_shapes_config

    files = sorted(f for f in src.iterdir() if f.suffix.lower() in READABLE_SUFFIXES)
    if not files:
        raise CLIError(f"{src}: no videos ({', '.join(READABLE_SUFFIXES)}) and no checkpoint")
    vids = []
    for f in files:
        try:
            vids.append(read_video(f))
        except VideoReadError as e:
            raise CLIError(str(e)) from e
    cfg = moving_shapes_config(size=vids[0].shape[1], frames=vids[0].shape[0])
    cfg.max_objects = a.max_objects
    return {"source": str(src), "kind": "videos"}, vids, cfg, None


def _reference(a: argparse.Namespace):
    """Reference clips measured as if sampled: what a perfect model scores."""
    from ..evaluation import moving_shapes_config, reference_clips

    cfg = moving_shapes_config(size=a.size, frames=a.num_frames)
    cfg.max_objects = a.max_objects
    report = {"source": "real Moving Shapes clips", "kind": "reference"}
    return report, reference_clips(cfg, a.num_videos), cfg, None


def _checkpoint_samples(a: argparse.Namespace):
    """``--num-videos`` clips sampled from a Moving Shapes checkpoint, in batches."""
    import numpy as np
    import torch

    from ..evaluation import expected_counts, moving_shapes_config, reference_clips
    from ..evaluation.i2v import evaluate_i2v
    from ..evaluation.trajectory_eval import trajectory_report, trajectory_requests

    from ..conditioning import model_conditions
    from ..data.captions import prompt_set
    from ..evaluation.adherence import mean_speed, prompt_adherence

    pipe = load_pipeline(a.target, a.device, a.guide)
    if pipe.experiment.data.kind not in ("moving_shapes", "latents"):
        raise CLIError(f"{a.target} was not trained on Moving Shapes; `vidiff eval` measures "
                       "Moving Shapes clips (sample it and evaluate the folder instead)")
    cfg = moving_shapes_config(pipe.experiment)
    # image-to-video (LaMD): started from the reference clips' first frames, without a prompt
    images = ([v[0] for v in reference_clips(cfg, a.num_videos)]
              if "content" in model_conditions(pipe.model) else None)
    text = "context" in model_conditions(pipe.model) and images is None
    motion = text and text_with_motion(pipe.experiment)
    prompts = prompt_set(a.num_videos, a.seed, motion=motion) if text else None
    # trajectory control (Tora): held-out path families, one object a prompt
    requests = None
    controlled = "motion" in model_conditions(pipe.model)
    if a.held_out_paths and not (controlled or text):
        raise CLIError("--held-out-paths needs a model with trajectory control or text "
                       "prompts (the requests name one object)")
    if controlled or a.held_out_paths:
        frames, size = pipe.clip_size
        requests = trajectory_requests(a.num_videos, frames, size, a.seed)
        prompts = [r[0] for r in requests] if text else None
    g = torch.Generator().manual_seed(a.seed)
    vids, labels = [], []
    t0 = time.perf_counter()
    for start in range(0, a.num_videos, a.batch_size):
        n = min(a.batch_size, a.num_videos - start)
        lab = random_labels(pipe, n, g)
        labels += [] if lab is None else lab.tolist()
        cond = {"prompt": prompts[start:start + n]} if text else {}
        if images is not None:
            cond = {"image": np.stack(images[start:start + n])}
        if controlled:
            cond["trajectories"] = [r[3][None] for r in requests[start:start + n]]
        vids += list(pipe(num_videos=n, class_labels=lab, generator=g, progress=False,
                          **cond, **sampling_kwargs(a)))
    report = {"source": str(a.target), "kind": "checkpoint",
              **sampling_report(a, pipe.experiment.sample),
              "sampling_seconds": round(time.perf_counter() - t0, 2)}
    if text:  # prompt adherence (direction only where the model saw text with motion)
        report["prompt_adherence"] = prompt_adherence(vids, prompts, motion=motion)
        report["prompts"] = prompts
    if images is not None:  # the generated first frame, identity kept, ...
        report["image_to_video"] = evaluate_i2v(vids, images, cfg)
    if requests is not None:
        report["trajectory_control"] = trajectory_report(vids, requests, text)
    report["mean_speed"] = mean_speed(vids)
    report["real_mean_speed"] = mean_speed(reference_clips(cfg, 64))
    return report, vids, cfg, expected_counts(pipe.experiment, labels)


def text_with_motion(experiment) -> bool:
    """Whether a text-conditioned model was trained on captioned clips (so its prompts can ask
    for a direction): not on images only, not on clips with their captions dropped."""
    d = experiment.data
    return not d.images and not d.drop_captions
