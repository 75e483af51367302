"""``vidiff long``: a long video, window by window, streamed to a file."""

from __future__ import annotations

import argparse
import json
import time

from .args import SAMPLING, add_options, number, positive
from .base import Command, load_pipeline


class Long(Command):
    name = "long"
    help = "a long video, window by window, streamed to a file"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("checkpoint")
        p.add_argument("--frames", type=positive("--frames"), default=1024)
        p.add_argument("--mode", choices=["autoregressive", "hierarchical"],
                       default="autoregressive")
        p.add_argument("--context", type=positive("--context"),
                       help="given frames per window (model-space frames)")
        p.add_argument("--stride", type=positive("--stride"), help="hierarchical: key-frame "
                       "stride in model frames (default: the key model's own frame stride)")
        p.add_argument("--key-checkpoint", help="hierarchical: the key-frame-rate model (default: "
                       "the one the checkpoint bundles, if any)")
        p.add_argument("--cond-t", type=number("--cond-t", "[0, 1]"), default=None,
                       help="noise level s of the given frames (conditional latent "
                       "perturbation); default: 0 for models trained with frame masks, else "
                       "VDM-style")
        p.add_argument("--uncond-weight", type=number("--uncond-weight", ">= 0"), default=0.0,
                       help="unconditional guidance w")
        add_options(p, *SAMPLING, "--num-videos", "--seed", "--fps", "--device",
                    steps={"default": 50, "help": None},
                    sampler={"default": "ddim", "help": None},
                    num_videos={"default": 1, "help": "videos sampled as one batch, written to "
                                                      "OUT_0, OUT_1, ..."})
        p.add_argument("--out", default="long.mp4")

    def run(self, a: argparse.Namespace) -> int:
        import torch

        from ..pipelines import LongVideoPipeline

        pipe = LongVideoPipeline.from_pipe(load_pipeline(a.checkpoint, a.device,
                                                         key=a.key_checkpoint))
        t0 = time.perf_counter()
        res = pipe(a.frames, a.out, mode=a.mode, context=a.context,
                            stride=a.stride, fps=a.fps,
                            cond_t="auto" if a.cond_t is None else a.cond_t,
                            uncond_weight=a.uncond_weight, num_videos=a.num_videos,
                            generator=torch.Generator().manual_seed(a.seed),
                            num_inference_steps=a.steps, sampler=a.sampler)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(res))
        return 0
