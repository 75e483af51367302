"""``vidiff sample``: sample videos from a checkpoint and write them for viewing."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

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
        p.add_argument("--prompt", help="text-conditioned models: what the clips show")
        p.add_argument("--negative-prompt",
                       help="what guidance steers away from (default: the empty prompt)")
        p.add_argument("--trajectory", action="append", default=[], metavar="FILE",
                       help="trajectory-controlled models (Tora): a path file (x,y a line on "
                            "a 256x256 canvas, or JSON with a canvas); repeat for several")
        p.add_argument("--image", metavar="FILE",
                       help="trajectory-controlled models: the first frame to keep")
        p.add_argument("--prompts", metavar="FILE",
                       help="a text file of prompts, one a line: one output file per prompt "
                            "(OUT_000.mp4, ...)")
        add_options(p, "--seed", "--fps", "--device", fps={
            "default": None, "help": "frames per second: the condition of fps-conditioned "
            "models (default: the checkpoint's) and the file's rate"})
        p.add_argument("--video-fps", type=like("--video-fps", "sample.fps"),
                       help="the file's frame rate, when it should differ from --fps")
        p.add_argument("--out", default="out.mp4",
                       help="output .mp4/.gif (+ gif and contact sheet)")
        p.add_argument("--quiet", action="store_true")

    def run(self, a: argparse.Namespace) -> int:
        import torch

        from ..conditioning import model_conditions
        from ..data.sample_outputs import write_sample_outputs
        from ..data.video_io import check_writable

        check_writable(a.out)  # a file type we cannot write: say so before sampling
        if a.prompts and a.prompt:
            raise CLIError("give --prompt or --prompts, not both")
        prompts = read_prompts(a.prompts) if a.prompts else [a.prompt]
        pipe = load_pipeline(a.checkpoint, a.device, a.guide)
        paths, first = trajectory_inputs(pipe, a)
        takes_fps = "fps" in model_conditions(pipe.model)
        fps = a.fps or pipe.experiment.sample.fps
        kw = sampler_options(a, a.sampler or pipe.experiment.sample.sampler)
        report: dict = {"seconds": 0.0}
        for i, prompt in enumerate(prompts):
            g = torch.Generator().manual_seed(a.seed)
            text = {} if prompt is None else {"prompt": prompt,
                                               "negative_prompt": a.negative_prompt}
            if prompt is None and a.negative_prompt is not None:
                raise CLIError("--negative-prompt needs --prompt")
            t0 = time.perf_counter()
            vids = pipe(num_videos=a.num_videos, num_frames=a.num_frames,
                        class_labels=a.class_label, generator=g, progress=not a.quiet,
                        **({"fps": fps} if takes_fps else {}), **text,
                        **({"trajectories": paths, "image": first} if paths is not None
                           else {}), **sampling_kwargs(a), **kw)
            report["seconds"] += time.perf_counter() - t0
            out = Path(a.out)
            if a.prompts:
                out = out.with_name(f"{out.stem}_{i:03d}{out.suffix}")
            files = write_sample_outputs(list(vids), out, a.video_fps or fps,
                                         None if prompt is None else [prompt] * len(vids))
            if paths is not None:
                files["paths"] = write_path_sheet(vids, paths, out)
            if a.prompts:
                report.setdefault("outputs", []).append({"prompt": prompt, **files})
            else:
                report.update(files)
        report["seconds"] = round(report["seconds"], 2)
        print(json.dumps(report))
        return 0


def trajectory_inputs(pipe, a: argparse.Namespace):
    """``(paths (K, F, 2), first frame or None)`` from ``--trajectory`` / ``--image`` for a
    trajectory-controlled checkpoint, ``(None, None)`` without them.

    Raises:
        CLIError: trajectories for another kind of model, or ``--image`` without them.
    """
    from ..pipelines import TrajectoryPipeline, load_trajectories

    if not a.trajectory:
        if a.image:
            raise CLIError("--image needs --trajectory (for a first frame without paths, "
                           "use `vidiff i2v`)")
        return None, None
    if not isinstance(pipe, TrajectoryPipeline):
        raise CLIError(f"{a.checkpoint} is not trajectory-controlled; --trajectory needs a "
                       "Tora checkpoint")
    frames, size = pipe.clip_size
    frames = a.num_frames or frames
    paths = load_trajectories(a.trajectory, frames, (size, size))
    first = None
    if a.image:
        from ..data.images import load_image

        first, _ = load_image(a.image, size)
    return paths, first


def write_path_sheet(vids, paths, out: Path) -> str:
    """``<stem>_paths.png``: each clip's frames with the requested paths drawn over them."""
    from PIL import Image

    from ..data.sample_outputs import contact_sheet, draw_paths

    sheet = out.with_name(out.stem + "_paths.png")
    Image.fromarray(contact_sheet([draw_paths(v, paths) for v in vids[:8]], scale=1)).save(sheet)
    return str(sheet)


def read_prompts(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped.

    Raises:
        CLIError: the file cannot be read, is not UTF-8, or holds no prompt.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"--prompts {path}: cannot read it ({e})")
    prompts = [ln.strip() for ln in lines if ln.strip()]
    if not prompts:
        raise CLIError(f"--prompts {path}: no prompt in it (one a line)")
    return prompts


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
