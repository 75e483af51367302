"""What every command shares: the :class:`Command` interface, :class:`CLIError` and loading a
checkpoint with its failures turned into that one-line error."""

from __future__ import annotations

import argparse

__all__ = ["CLIError", "Command", "load_pipeline", "load_autoencoder", "random_labels"]


class CLIError(Exception):
    """A mistake of the user's: ``vidiff`` prints it as one line ``vidiff: error: ...``."""


class Command:
    """One ``vidiff`` subcommand. A new command is a module with a subclass (``name``, ``help``,
    its arguments and ``run``) and one entry in ``vidiff.cli.COMMANDS``."""

    name: str = ""
    help: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments on its subparser."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the exit status. Raise :class:`CLIError` for the user's mistakes."""
        raise NotImplementedError


def load_pipeline(path: str, device: str, guide: str | None = None, key: str | None = None):
    """The pipeline a checkpoint's manifest names (a :data:`~vidiff.registry.PIPELINES` entry;
    :class:`~vidiff.pipelines.VideoDiffusionPipeline` for a folder without one), with an
    autoguidance model and a key-frame model attached when given."""
    from ..pipelines import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(path, device=device)
        if guide:
            pipe.attach_guide(guide)
        if key:
            pipe.attach_key_pipeline(key)
        return pipe
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e


def load_autoencoder(path: str):
    """The :class:`~vidiff.models.Autoencoder` of a checkpoint - an autoencoder folder, or a
    pipeline whose ``autoencoder`` component it is - in eval mode."""
    from ..training.checkpoint import load_autoencoder as load

    try:
        return load(path).eval()
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e


def random_labels(pipe, n: int, generator):
    """Labels for a class-conditional checkpoint (drawn uniformly), else None."""
    if pipe.model.num_classes is None:
        return None
    return pipe.random_class_labels(n, generator)
