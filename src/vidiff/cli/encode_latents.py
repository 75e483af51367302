"""``vidiff encode-latents``: encode clips once into a latent cache for latent diffusion."""

from __future__ import annotations

import argparse
import json
import time

from .args import add_options, like, positive
from .base import CLIError, Command, load_autoencoder


class EncodeLatents(Command):
    name = "encode-latents"
    help = ("encode clips once into a latent cache (train latent diffusion on it with "
            "data.kind=latents)")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("checkpoint", help="a VideoAutoencoder checkpoint")
        p.add_argument("--out", required=True, help="the cache (.safetensors)")
        p.add_argument("--num-clips", type=positive("--num-clips"), default=1000)
        p.add_argument("--frames", type=positive("--frames"), default=64,
                       help="pixel frames a clip")
        p.add_argument("--size", type=positive("--size"), default=64)
        p.add_argument("--videos", help="a folder or CSV of videos (default: Moving Shapes)")
        p.add_argument("--min-objects", default=1,
                       type=like("--min-objects", "data.moving_shapes.min_objects", int))
        add_options(p, "--max-objects", "--batch-size", "--seed", batch_size={"default": 8})
        p.add_argument("--threads", type=like("--threads", "train.num_threads", int))

    def run(self, a: argparse.Namespace) -> int:
        from dataclasses import asdict

        import torch

        from ..data.datasets import MovingShapesDataset, VideoFolderDataset
        from ..data.latents import encode_to_cache
        from ..data.moving_shapes import MovingShapesConfig

        if not a.out.endswith(".safetensors"):
            raise CLIError(f"--out {a.out}: a latent cache is a .safetensors file")
        if a.min_objects > a.max_objects:
            raise CLIError(f"--min-objects must be <= --max-objects ({a.max_objects}), got "
                           f"{a.min_objects}")
        if a.threads:
            torch.set_num_threads(a.threads)
        ae = load_autoencoder(a.checkpoint)
        ft, fs = ae.factors
        if a.frames % ft or a.size % fs:
            raise CLIError(f"--frames must be a multiple of f_t={ft} and --size of f_s={fs}")
        meta = {"autoencoder": str(a.checkpoint)}
        kept: dict[str, list] = {"fps": [], "caption": []}
        if a.videos:
            ds = VideoFolderDataset(a.videos, a.frames, a.size, on_error="skip", seed=a.seed)
            items = (ds[i % len(ds)] for i in range(a.num_clips))
            meta["source"] = str(a.videos)
        else:
            cfg = MovingShapesConfig(size=a.size, num_frames=a.frames, min_objects=a.min_objects,
                                     max_objects=a.max_objects)
            ds = MovingShapesDataset(cfg, seed=a.seed, label="num_objects")
            kept["label"] = []
            items = (ds[i] for i in range(a.num_clips))
            meta.update(source="moving_shapes", moving_shapes=asdict(cfg))
        t0 = time.perf_counter()
        out = encode_to_cache(ae, _videos_keeping(items, kept), a.out, meta,
                              labels=kept.get("label"), batch_size=a.batch_size,
                              total=a.num_clips, fps=kept["fps"], captions=kept["caption"])
        print(json.dumps({"out": str(out), "clips": a.num_clips, "seconds":
                          round(time.perf_counter() - t0, 1)}))
        return 0


def _videos_keeping(items, kept: dict[str, list]):
    """The videos of dataset items, appending each item's ``label``, ``fps`` and ``caption`` to
    ``kept[key]`` as it is drawn (for the keys ``kept`` has; a clip without a caption keeps the
    empty prompt)."""
    for it in items:
        for key, values in kept.items():
            values.append(it.get(key, "" if key == "caption" else None))
        yield it["video"]
