"""``vidiff sample``: sample videos from a checkpoint and write them for viewing."""

from __future__ import annotations

import argparse
import json
import time

from .args import GUIDANCE, SAMPLING, add_options, like, number, sampling_kwargs
from .base import CLIError, Command, load_pipeline


class Sample(Command):
    name = "sample"
    help = "sample videos from a checkpoint"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("checkpoint")
        p.add_argument("--num-frames", type=like("--num-frames", "sample.num_frames", int))
        add_options(p, "--num-videos", *SAMPLING, num_videos={"default": 4})
        p.add_argument("--eta", type=like("--eta", "sample.eta"),
                       help="ddim: 0 deterministic, 1 ancestral-like")
        p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                       help="sampler option: gamma (ancestral, pc), delta, corrector_steps (pc)")
        add_options(p, *GUIDANCE,
                    guidance_scale={"help": "classifier-free guidance (default: the checkpoint's)"})
        # its range is the model's classes: the pipeline checks it before sampling
        p.add_argument("--class-label", type=number("--class-label", None, int),
                       help="class-conditional models; default: random")
        add_options(p, "--seed", "--fps", "--device")
        p.add_argument("--out", default="out.mp4",
                       help="output .mp4/.gif (+ gif and contact sheet)")
        p.add_argument("--quiet", action="store_true")

    def run(self, a: argparse.Namespace) -> int:
        import torch

        from ..data.video_io import check_writable, write_sample_outputs

        check_writable(a.out)  # a file type we cannot write: say so before sampling
        pipe = load_pipeline(a.checkpoint, a.device, a.guide)
        g = torch.Generator().manual_seed(a.seed)
        kw = sampler_options(a, a.sampler or pipe.experiment.sample.sampler)
        t0 = time.perf_counter()
        vids = pipe(num_videos=a.num_videos, num_frames=a.num_frames,
                    class_labels=a.class_label, generator=g, progress=not a.quiet,
                    **sampling_kwargs(a), **kw)
        dt = time.perf_counter() - t0
        files = write_sample_outputs(list(vids), a.out, a.fps)
        print(json.dumps({"seconds": round(dt, 2), **files}))
        return 0


def sampler_options(a: argparse.Namespace, sampler: str) -> dict:
    """``--eta`` and the ``--opt KEY=NUMBER`` options of ``sampler`` as keyword arguments, each
    of the type of its default in the sampler's signature (unknown keys are left for the
    pipeline's one-line error)."""
    from ..diffusion import sampler_options as options_of

    defaults = options_of(sampler)
    kw = {}
    if a.eta is not None:
        kw["eta"] = a.eta
    for item in a.opt:
        k, _, v = item.partition("=")
        k = k.strip()
        default = defaults.get(k)
        try:
            if isinstance(default, bool):
                if v.strip().lower() not in ("true", "false"):
                    raise ValueError(v)
                kw[k] = v.strip().lower() == "true"
            else:
                kw[k] = int(v) if isinstance(default, int) else float(v)
        except ValueError:
            raise CLIError(f"--opt {item!r}: expected KEY=" +
                           ("true|false" if isinstance(default, bool) else "NUMBER"))
    return kw
