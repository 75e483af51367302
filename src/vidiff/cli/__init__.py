"""The ``vidiff`` command line: train, sample, i2v, eval, long, autoencode, motion-swap,
encode-latents, export, demo, data; one module a command, listed in :data:`COMMANDS`.

Errors a user can cause (bad arguments, config keys, missing or unreadable files) print one line
``vidiff: error: ...`` and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .autoencode import Autoencode
from .base import CLIError, Command
from .data import Data
from .demo import DEMO_CHECKPOINT, Demo
from .encode_latents import EncodeLatents
from .evaluate import Evaluate
from .export import Export
from .i2v import ImageToVideo
from .long import Long
from .motion_swap import MotionSwap
from .sample import Sample
from .train import Train
from ..version import __version__

__all__ = ["main", "build_parser", "COMMANDS", "CLIError", "Command", "DEMO_CHECKPOINT"]

#: the subcommands, in the order ``vidiff --help`` lists them
COMMANDS: list[type[Command]] = [Train, Sample, ImageToVideo, Evaluate, Long, Autoencode,
                                 MotionSwap, EncodeLatents, Export, Demo, Data]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``vidiff sample: error: ...``), exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="vidiff", description="Video diffusion models: train, "
                      "sample, evaluate.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"vidiff {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        cmd = command()
        cp = sub.add_parser(cmd.name, help=cmd.help)
        cmd.add_arguments(cp)
        cp.set_defaults(func=cmd.run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return a.func(a)
    except KeyboardInterrupt:
        print("vidiff: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user's mistakes, tracebacks with --debug
        from ..config import ConfigError
        from ..data.video_io import VideoReadError

        # also a NaN loss, a clip too large, a path that cannot be written, and an optional
        # extra that is not installed (its message names the extra)
        expected = (CLIError, ConfigError, VideoReadError, ValueError, OSError,
                    FloatingPointError, MemoryError, ImportError)
        if a.debug or not isinstance(e, expected):
            raise
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and e.filename:
            msg = f"{e.filename}: {e.strerror or e}"
        elif isinstance(e, MemoryError) and not str(e):
            msg = "out of memory"
        else:
            msg = " ".join(str(e).split()) or type(e).__name__
        print(f"vidiff: error: {msg}", file=sys.stderr)
        return 2
