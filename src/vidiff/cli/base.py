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
    """A :class:`~vidiff.pipelines.VideoDiffusionPipeline` from a checkpoint, with an autoguidance
    model and a key-frame model attached when given."""
    from ..pipelines import VideoDiffusionPipeline

    try:
        pipe = VideoDiffusionPipeline.from_pretrained(path, device=device)
        if guide:
            pipe.attach_guide(guide)
        if key:
            pipe.attach_key_pipeline(key)
        return pipe
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e


def load_autoencoder(path: str):
    """The :class:`~vidiff.models.VideoAutoencoder` of a checkpoint, in eval mode."""
    from ..models import VideoAutoencoder, load_model
    from ..training.checkpoint import resolve_checkpoint

    try:
        ae = load_model(resolve_checkpoint(path))
    except FileNotFoundError as e:
        raise CLIError(str(e)) from e
    if not isinstance(ae, VideoAutoencoder):
        raise CLIError(f"{path} holds a {type(ae).__name__}, not a VideoAutoencoder")
    return ae.eval()


def random_labels(pipe, n: int, generator):
    """Labels for a class-conditional checkpoint (drawn uniformly), else None."""
    if getattr(pipe.model.config, "num_classes", None) is None:
        return None
    return pipe.random_class_labels(n, generator)
