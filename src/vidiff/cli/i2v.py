"""``vidiff i2v``: image-to-video (LaMD) from a PNG/JPEG, optionally with a prompt."""

from __future__ import annotations

import argparse
import json
import logging
import time

from .args import add_options
from .base import CLIError, Command, load_pipeline

log = logging.getLogger(__name__)


class ImageToVideo(Command):
    name = "i2v"
    help = "animate an image (LaMD): generate its motion, optionally from a prompt"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("image", help="the first frame: a PNG, JPEG, ... (resized and "
                       "centre-cropped to the model's size)")
        p.add_argument("--checkpoint", default="lamd_tiny",
                       help="an image-to-video checkpoint (default: the shipped lamd_tiny)")
        p.add_argument("--prompt", help="text-image-to-video: the motion to make "
                       "(e.g. 'a red circle moving up-left')")
        p.add_argument("--negative-prompt", help="what guidance steers away from")
        add_options(p, "--num-videos", "--steps", "--sampler", "--guidance-scale", "--seed",
                    "--fps", "--device", num_videos={"default": 4},
                    steps={"help": "K: sample with a K-step sub-sequence of the training steps "
                           "(default: the checkpoint's)"})
        p.add_argument("--out", default="i2v.mp4",
                       help="output .mp4/.gif (+ gif and contact sheet)")
        p.add_argument("--quiet", action="store_true")

    def run(self, a: argparse.Namespace) -> int:
        import torch

        from ..data.images import load_image
        from ..data.sample_outputs import write_sample_outputs
        from ..data.video_io import check_writable
        from ..pipelines import ImageToVideoPipeline

        check_writable(a.out)
        if a.negative_prompt is not None and a.prompt is None:
            raise CLIError("--negative-prompt needs --prompt")
        pipe = load_pipeline(a.checkpoint, a.device)
        if not isinstance(pipe, ImageToVideoPipeline):
            raise CLIError(f"{a.checkpoint} is a {type(pipe).__name__}, not an image-to-video "
                           "checkpoint (a motion generator trained on an MCD-VAE, as "
                           "configs/lamd_tiny.yaml)")
        size = pipe.image_size
        image, (h, w) = load_image(a.image, size)
        if (h, w) != (size, size):
            log.info("note: %s is %dx%d; resized and centre-cropped to %dx%d", a.image, w, h,
                     size, size)
        text = {} if a.prompt is None else {"prompt": a.prompt,
                                             "negative_prompt": a.negative_prompt}
        if text and "context" not in pipe.model.accepted_conditions:
            raise CLIError(f"{a.checkpoint} takes no prompt (its motion generator has no text "
                           "conditioning)")
        g = torch.Generator().manual_seed(a.seed)
        t0 = time.perf_counter()
        kw = {"num_inference_steps": a.steps, "sampler": a.sampler,
              "guidance_scale": a.guidance_scale}
        vids = pipe(image=image, num_videos=a.num_videos, generator=g, progress=not a.quiet,
                    **text, **kw)
        seconds = time.perf_counter() - t0
        labels = None if a.prompt is None else [a.prompt] * len(vids)
        files = write_sample_outputs(list(vids), a.out, a.fps, labels)
        print(json.dumps({"seconds": round(seconds, 2), "image_size": size, **files}))
        return 0
