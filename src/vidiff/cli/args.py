"""Options several commands share, declared once, and reading them back.

``add_options(parser, *flags, **changes)`` adds shared options in the order given; the groups
below name the ones that travel together. ``changes`` adjusts one option for one command,
keyed by its dest: ``add_options(p, *SAMPLING, steps={"default": 50, "help": None})``.
"""

from __future__ import annotations

import argparse

from .base import CLIError

__all__ = ["FROM_CHECKPOINT", "AUTOGUIDANCE", "GUIDANCE", "SAMPLING", "positive", "add_options",
           "interval", "guidance_report", "sampling_report", "sampling_kwargs"]

FROM_CHECKPOINT = "default: the checkpoint's"

#: autoguidance weight and noise-level interval
AUTOGUIDANCE = ("--autoguidance-scale", "--autoguidance-interval")
#: classifier-free guidance, autoguidance and the guide model to autoguide with
GUIDANCE = ("--guidance-scale", *AUTOGUIDANCE, "--guide")
#: how to sample: number of steps and sampler
SAMPLING = ("--steps", "--sampler")


def positive(name: str):
    """An argparse type: an integer >= 1, named ``name`` in its error message."""
    def parse(v: str) -> int:
        try:
            i = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {v!r}")
        if i < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {i}")
        return i
    return parse


def _shared_options() -> dict[str, dict]:
    from ..diffusion import SAMPLERS

    return {
        "--num-videos": {"type": positive("--num-videos")},
        "--batch-size": {"type": positive("--batch-size")},
        "--steps": {"type": positive("--steps"), "help": FROM_CHECKPOINT},
        "--sampler": {"choices": sorted(SAMPLERS), "help": FROM_CHECKPOINT},
        "--guidance-scale": {"type": float, "help": FROM_CHECKPOINT},
        "--autoguidance-scale": {
            "type": float,
            "help": "autoguidance weight w: (1+w) D - w D_guide (default: the checkpoint's)"},
        "--autoguidance-interval": {
            "type": float, "nargs": 2, "metavar": ("LO", "HI"),
            "help": "autoguide only at noise levels LO < t <= HI (default: the checkpoint's; "
                    "every step)"},
        "--guide": {"help": "a weaker checkpoint of the same data to autoguide with"},
        "--seed": {"type": int, "default": 0},
        "--fps": {"type": float, "default": 8.0},
        "--device": {"default": "cpu"},
        "--max-objects": {"type": int, "default": 2},
    }


def add_options(parser: argparse.ArgumentParser, *flags: str, **changes: dict) -> None:
    """Add the shared options ``flags`` to ``parser`` in this order, each updated by
    ``changes[dest]`` where given."""
    shared = _shared_options()
    unknown = set(changes) - {f[2:].replace("-", "_") for f in flags}
    if unknown:
        raise TypeError(f"changes to options not added: {sorted(unknown)}")
    for flag in flags:
        parser.add_argument(flag, **{**shared[flag], **changes.get(flag[2:].replace("-", "_"),
                                                                   {})})


def interval(args: argparse.Namespace) -> tuple[float, float] | None:
    """``--autoguidance-interval LO HI`` as a tuple (None when not given), checked."""
    from ..diffusion.guidance import guidance_interval

    iv = getattr(args, "autoguidance_interval", None)
    try:
        return guidance_interval(iv)
    except ValueError:
        raise CLIError(f"--autoguidance-interval {iv[0]:g} {iv[1]:g}: need 0 <= LO < HI <= 1")


def _default(value, default):
    return default if value is None else value


def guidance_report(args: argparse.Namespace, defaults) -> dict:
    """The autoguidance settings a command sampled with (``defaults``: the checkpoint's sample
    settings), for its JSON report."""
    iv = _default(interval(args), defaults.autoguidance_interval)
    return {"autoguidance_scale": _default(args.autoguidance_scale, defaults.autoguidance_scale),
            "autoguidance_interval": None if iv is None else list(iv)}


def sampling_report(args: argparse.Namespace, defaults) -> dict:
    """Sampler, steps, classifier-free guidance and autoguidance a command sampled with."""
    return {"sampler": args.sampler or defaults.sampler, "steps": args.steps or defaults.steps,
            "guidance_scale": _default(getattr(args, "guidance_scale", None),
                                       defaults.guidance_scale),
            **guidance_report(args, defaults)}


def sampling_kwargs(args: argparse.Namespace) -> dict:
    """The pipeline's sampling arguments from the shared options (None: the checkpoint's)."""
    return {"num_inference_steps": args.steps, "sampler": args.sampler,
            "guidance_scale": getattr(args, "guidance_scale", None),
            "autoguidance_scale": args.autoguidance_scale, "autoguidance_interval": interval(args)}
