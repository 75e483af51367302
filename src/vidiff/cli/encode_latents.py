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
        p.add_argument("--frames", type=positive("--frames"),
                       help="pixel frames a clip (default 64, or the recipe's)")
        p.add_argument("--size", type=positive("--size"),
                       help="pixels a side (default 64, or the recipe's)")
        p.add_argument("--videos", help="a folder or CSV of videos (default: Moving Shapes)")
        p.add_argument("--recipe", help="take the clips' frames and size, the Moving Shapes "
                       "settings (motion, captions, speeds, ...) and data.flow from this "
                       "recipe's data section")
        p.add_argument("--flow", action=argparse.BooleanOptionalAction, default=None,
                       help="also store each clip's dense flow (Moving Shapes' exact flow, a "
                       "video's by OpenCV; trajectory training on the cache; default: the "
                       "recipe's data.flow)")
        p.add_argument("--min-objects",
                       type=like("--min-objects", "data.moving_shapes.min_objects", int))
        add_options(p, "--max-objects", "--batch-size", "--seed", batch_size={"default": 8},
                    max_objects={"default": None})
        p.add_argument("--threads", type=like("--threads", "train.num_threads", int))

    def run(self, a: argparse.Namespace) -> int:
        from dataclasses import asdict

        import torch

        from ..data.datasets import MovingShapesDataset, VideoFolderDataset
        from ..data.latents import encode_to_cache

        if not a.out.endswith(".safetensors"):
            raise CLIError(f"--out {a.out}: a latent cache is a .safetensors file")
        cfg, flow, videos = _clips(a)
        if a.threads:
            torch.set_num_threads(a.threads)
        ae = load_autoencoder(a.checkpoint)
        ft, fs = ae.factors
        if cfg.num_frames % ft or cfg.size % fs:
            raise CLIError(f"clips of {cfg.num_frames} frames of {cfg.size}px: the frames must be "
                           f"a multiple of f_t={ft} and the size of f_s={fs} (--frames, --size)")
        meta = {"autoencoder": str(a.checkpoint)}
        kept: dict[str, list] = {"fps": [], "caption": []}
        if videos:
            ds = VideoFolderDataset(videos["path"], cfg.num_frames, cfg.size,
                                    videos["frame_stride"], videos["target_fps"],
                                    on_error="skip", seed=a.seed, flow=flow)
            items = (ds[i % len(ds)] for i in range(a.num_clips))
            meta["source"] = str(videos["path"])
        else:
            ds = MovingShapesDataset(cfg, seed=a.seed, label="num_objects", flow=flow)
            kept["label"] = []
            items = (ds[i] for i in range(a.num_clips))
            meta.update(source="moving_shapes", moving_shapes=asdict(cfg))
        if flow:
            kept["flow"] = []
        t0 = time.perf_counter()
        out = encode_to_cache(ae, _videos_keeping(items, kept), a.out, meta,
                              labels=kept.get("label"), batch_size=a.batch_size,
                              total=a.num_clips, fps=kept["fps"], captions=kept["caption"],
                              flow=kept.get("flow"))
        print(json.dumps({"out": str(out), "clips": a.num_clips, "seconds":
                          round(time.perf_counter() - t0, 1)}))
        return 0


def _clips(a: argparse.Namespace):
    """What to encode: the clips' :class:`MovingShapesConfig` (the recipe's
    ``data.moving_shapes`` when ``--recipe`` is given, else the defaults; its frames and size
    are also the videos') with the options given on the command line, whether to store flow,
    and the videos (``None`` for Moving Shapes, else ``{"path", "frame_stride",
    "target_fps"}``). A video recipe's ``data.path`` is the default ``--videos``, read at its
    stride or rate; a recipe whose clips are neither Moving Shapes nor videos of its own needs
    ``--videos``."""
    from dataclasses import replace

    import yaml

    from ..config import ConfigError, load_config
    from ..data.moving_shapes import MovingShapesConfig

    cfg, flow = MovingShapesConfig(num_frames=64, max_objects=2), False
    videos = {"path": a.videos, "frame_stride": 1, "target_fps": None}
    if a.recipe:
        try:
            recipe = load_config(a.recipe)
            raw = (yaml.safe_load(open(a.recipe, encoding="utf-8")) or {}).get("data") or {}
        except (ConfigError, FileNotFoundError) as e:
            raise CLIError(f"--recipe {a.recipe}: {e}") from e
        d = recipe.data
        if d.kind in ("video_folder", "video_csv"):  # its clips, read as it reads them
            videos = {"path": a.videos or d.path, "frame_stride": d.frame_stride,
                      "target_fps": d.target_fps}
        elif d.kind != "moving_shapes" and "moving_shapes" not in raw and not a.videos:
            raise CLIError(f"--recipe {a.recipe}: its data section describes no Moving Shapes "
                           "clips; give the videos to encode with --videos")
        frames, size = d.clip_shape()  # (a latent or video recipe's own clip size)
        cfg, flow = replace(d.moving_shapes, num_frames=frames, size=size), d.flow
    given = {"num_frames": a.frames, "size": a.size, "min_objects": a.min_objects,
             "max_objects": a.max_objects}
    cfg = replace(cfg, **{k: v for k, v in given.items() if v is not None})
    if cfg.min_objects > cfg.max_objects:
        raise CLIError(f"--min-objects must be <= --max-objects ({cfg.max_objects}), got "
                       f"{cfg.min_objects}")
    return cfg, (flow if a.flow is None else a.flow), (videos if videos["path"] else None)


def _videos_keeping(items, kept: dict[str, list]):
    """The videos of dataset items, appending each item's ``label``, ``fps`` and ``caption`` to
    ``kept[key]`` as it is drawn (for the keys ``kept`` has; a clip without a caption keeps the
    empty prompt)."""
    for it in items:
        for key, values in kept.items():
            value = it.get(key, "" if key == "caption" else None)
            values.append(value.half() if key == "flow" else value)  # (flow: half the memory)
        yield it["video"]
