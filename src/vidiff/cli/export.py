"""``vidiff export``: a sampling-only checkpoint, what the package ships for ``vidiff demo``."""

from __future__ import annotations

import argparse
import json
import logging

from ..registry import SAMPLERS
from .args import AUTOGUIDANCE, SAMPLING, add_options, interval
from .base import CLIError, Command, load_pipeline

log = logging.getLogger("vidiff")

#: sample defaults that ``--KEY VALUE`` overrides in the exported checkpoint
SAMPLE_DEFAULTS = ("sampler", "steps", "autoguidance_scale", "guidance_scale")


class Export(Command):
    name = "export"
    help = ("write a sampling-only checkpoint (EMA weights, recipe, sample defaults, "
            "autoencoder / guide model)")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("checkpoint")
        p.add_argument("--out", required=True, help="the folder to write")
        add_options(p, "--guide",
                    guide={"help": "bundle this weaker checkpoint as the autoguidance model"})
        p.add_argument("--key", help="bundle this checkpoint as the key-frame model of "
                       "hierarchical long video (same autoencoder)")
        p.add_argument("--decoder", help="an autoencoder checkpoint whose decoder was "
                       "fine-tuned with the encoder frozen: decode with it instead")
        p.add_argument("--half", action="store_true", help="store the weights as float16 "
                       "(half the size; loading casts back to float32)")
        add_options(p, *AUTOGUIDANCE, "--guidance-scale", *reversed(SAMPLING),
                    guidance_scale={"help": "default classifier-free guidance"},
                    sampler={"help": "default sampler"},
                    steps={"help": "default number of steps"})

    def run(self, a: argparse.Namespace) -> int:
        """EMA weights, recipe, sample defaults, autoencoder / guide / key-frame model when
        present."""
        import torch

        pipe = load_pipeline(a.checkpoint, "cpu", a.guide, a.key)
        if a.decoder:
            try:
                pipe.replace_decoder(a.decoder)
            except (FileNotFoundError, ValueError) as e:
                raise CLIError(str(e)) from e
        _record_cache_sources(pipe)
        s = pipe.experiment.sample
        for key in SAMPLE_DEFAULTS:
            if getattr(a, key) is not None:
                setattr(s, key, getattr(a, key))
        if a.autoguidance_interval is not None:
            s.autoguidance_interval = interval(a)
        if s.autoguidance_scale and pipe.guide_model is None:
            raise CLIError("--autoguidance-scale needs --guide (or a checkpoint with a guide "
                           "model)")
        if not getattr(SAMPLERS.get(s.sampler), "uses_training_grid", False):
            try:  # a default the checkpoint's schedule cannot take fails here, not at sampling
                pipe.schedule.timesteps(s.steps)
            except ValueError as e:
                raise CLIError(f"--steps {s.steps}: {e}") from e
        pipe.save_pretrained(a.out, dtype=torch.float16 if a.half else None)
        print(json.dumps({"out": a.out, "sampler": s.sampler, "steps": s.steps,
                          "guidance_scale": s.guidance_scale,
                          "autoguidance_scale": s.autoguidance_scale,
                          "autoguidance_interval": s.autoguidance_interval,
                          "guide": pipe.guide_model is not None,
                          "key": pipe.key_pipeline is not None, "half": a.half}))
        return 0


def _record_cache_sources(pipe) -> None:
    """A latent model (or its key-frame model): record what its cache was encoded from."""
    from ..data.latents import cache_source

    for p in (pipe, pipe.key_pipeline):
        d = p.experiment.data if p is not None else None
        if d is not None and d.kind == "latents" and not d.cache_source:
            try:
                d.cache_source = cache_source(d)
            except (FileNotFoundError, OSError) as e:
                log.warning("export: %s", e)
