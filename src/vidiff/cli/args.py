"""Options several commands share, declared once, and reading them back.

``add_options(parser, *flags, **changes)`` adds shared options in the order given; the groups
below name the ones that travel together. ``changes`` adjusts one option for one command,
keyed by its dest: ``add_options(p, *SAMPLING, steps={"default": 50, "help": None})``.
"""

from __future__ import annotations

import argparse

from .base import CLIError

__all__ = ["FROM_CHECKPOINT", "AUTOGUIDANCE", "GUIDANCE", "SAMPLING", "number", "positive",
           "like", "add_options", "interval", "guidance_report", "sampling_report",
           "sampling_kwargs"]

FROM_CHECKPOINT = "default: the checkpoint's"

#: autoguidance weight and noise-level interval
AUTOGUIDANCE = ("--autoguidance-scale", "--autoguidance-interval")
#: classifier-free guidance, autoguidance and the guide model to autoguide with
GUIDANCE = ("--guidance-scale", *AUTOGUIDANCE, "--guide")
#: how to sample: number of steps and sampler
SAMPLING = ("--steps", "--sampler")


def number(name: str, spec: str | None = None, kind: type = float):
    """An argparse type: an integer (``kind=int``) or finite number in the range ``spec`` (a
    :mod:`vidiff.ranges` string), named ``name`` in its one-line error, e.g. ``--fps must be >
    0, got 0``."""
    from ..ranges import range_message, within

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}")
        if not within(value, spec):
            raise argparse.ArgumentTypeError(range_message(name, text.strip(), spec))
        return value
    parse.__name__ = kind.__name__  # argparse's own messages name the type
    return parse


def positive(name: str):
    """An argparse type: an integer >= 1, named ``name`` in its error message."""
    return number(name, ">= 1", int)


def like(name: str, path: str, kind: type = float):
    """An argparse type for option ``name``, which sets (or stands for) the recipe field
    ``path`` (``"sample.fps"``, ``"data.moving_shapes.max_objects"``): ``kind`` in the range
    that field declares, so both reject the same values."""
    import typing

    from ..config import ExperimentConfig
    from ..ranges import field_range

    *sections, field = path.split(".")
    section = ExperimentConfig
    for key in sections:
        section = typing.get_type_hints(section)[key]
    return number(name, field_range(section, field), kind)


def _shared_options() -> dict[str, dict]:
    from ..diffusion import SAMPLERS

    return {
        "--num-videos": {"type": positive("--num-videos")},
        "--batch-size": {"type": positive("--batch-size")},
        "--steps": {"type": like("--steps", "sample.steps", int), "help": FROM_CHECKPOINT},
        "--sampler": {"choices": sorted(SAMPLERS), "help": FROM_CHECKPOINT},
        "--guidance-scale": {"type": like("--guidance-scale", "sample.guidance_scale"),
                             "help": FROM_CHECKPOINT},
        "--autoguidance-scale": {
            "type": like("--autoguidance-scale", "sample.autoguidance_scale"),
            "help": "autoguidance weight w: (1+w) D - w D_guide (default: the checkpoint's)"},
        "--autoguidance-interval": {
            "type": like("--autoguidance-interval", "sample.autoguidance_interval"),
            "nargs": 2, "metavar": ("LO", "HI"),
            "help": "autoguide only at noise levels LO < t <= HI (default: the checkpoint's; "
                    "every step)"},
        "--guide": {"help": "a weaker checkpoint of the same data to autoguide with"},
        "--seed": {"type": like("--seed", "train.seed", int), "default": 0},
        "--fps": {"type": like("--fps", "sample.fps"), "default": 8.0},
        "--device": {"default": "cpu"},
        "--max-objects": {"type": like("--max-objects", "data.moving_shapes.max_objects", int),
                          "default": 2},
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
