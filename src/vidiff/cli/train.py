"""``vidiff train``: train a recipe, resuming from its latest checkpoint."""

from __future__ import annotations

import argparse

from .args import like
from .base import Command


class Train(Command):
    name = "train"
    help = "train a recipe (resumes from its latest checkpoint)"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="YAML recipe, e.g. configs/vdm_tiny.yaml")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.steps=100 (repeatable)")
        p.add_argument("--steps", type=like("--steps", "train.steps", int),
                       help="train until this many steps")
        p.add_argument("--out-dir", help="run folder (default: train.out_dir)")

    def run(self, a: argparse.Namespace) -> int:
        import torch.distributed as dist

        from ..config import load_config
        from ..training import Trainer

        cfg = load_config(a.config, a.set)
        if a.out_dir:
            cfg.train.out_dir = a.out_dir
        tr = Trainer(cfg)
        res = tr.fit(steps=a.steps)
        if tr.rank == 0:
            print(f"trained {res.steps} steps; checkpoint: {res.checkpoint}")
        if dist.is_initialized():
            dist.destroy_process_group()
        return 0
