"""The ``vidiff`` command line: train, sample, eval, export, demo.

Errors a user can cause (bad arguments, config keys, missing or unreadable files) print one line
``vidiff: error: ...`` and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from importlib import resources
from pathlib import Path

__all__ = ["main", "DEMO_CHECKPOINT"]

log = logging.getLogger("vidiff")


def DEMO_CHECKPOINT() -> Path:
    """The small checkpoint shipped in the package (trained with configs/vdm_tiny.yaml)."""
    return Path(str(resources.files("vidiff") / "assets" / "vdm_tiny"))


class CLIError(Exception):
    pass


def _positive(name: str):
    def parse(v: str) -> int:
        try:
            i = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {v!r}")
        if i < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {i}")
        return i
    return parse


def _write_outputs(videos, out: Path, fps: float, stem: str = "sample") -> dict:
    """Write the batch tiled into one mp4 and gif (upscaled for viewing), each clip losslessly
    at its own size into ``<stem>_clips/``, and a contact-sheet PNG (rows = clips)."""
    import numpy as np
    from PIL import Image

    from .data.video_io import contact_sheet, write_video

    out.parent.mkdir(parents=True, exist_ok=True)
    # tile the batch side by side (up to 8 per row) so one file shows all clips at once
    n = len(videos)
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    F, H, W, _ = videos[0].shape
    grid = np.zeros((F, rows * H, cols * W, 3), np.uint8)
    for i, v in enumerate(videos):
        r, c = divmod(i, cols)
        grid[:, r * H:(r + 1) * H, c * W:(c + 1) * W] = v
    scale = max(1, 256 // max(grid.shape[1], grid.shape[2]))
    big = grid.repeat(scale, 1).repeat(scale, 2)
    files = {}
    if out.suffix.lower() == ".gif":
        files["gif"] = str(write_video(out, big, fps))
    else:
        files["video"] = str(write_video(out, big, fps))
        files["gif"] = str(write_video(out.with_suffix(".gif"), big, fps))
    clips = out.with_name(out.stem + "_clips")
    clips.mkdir(exist_ok=True)
    for i, v in enumerate(videos):  # one lossless file per clip, for `vidiff eval`
        write_video(clips / f"clip_{i:03d}.mp4", v, fps, lossless=True)
    files["clips"] = str(clips)
    sheet = out.with_name(out.stem + "_sheet.png")
    Image.fromarray(contact_sheet(list(videos[:16]), scale=2)).save(sheet)
    files["contact_sheet"] = str(sheet)
    return files


def cmd_train(a: argparse.Namespace) -> int:
    from .config import load_config
    from .training import Trainer

    cfg = load_config(a.config, a.set)
    if a.out_dir:
        cfg.train.out_dir = a.out_dir
    tr = Trainer(cfg)
    res = tr.fit(steps=a.steps)
    if tr.rank == 0:
        print(f"trained {res.steps} steps; checkpoint: {res.checkpoint}")
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def _pipe(path: str, device: str, guide: str | None = None, key: str | None = None):
    from .pipelines import VideoDiffusionPipeline

    try:
        pipe = VideoDiffusionPipeline.from_pretrained(path, device=device)
        if guide:
            pipe.attach_guide(guide)
        if key:
            pipe.attach_key_pipeline(key)
        return pipe
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e


def cmd_export(a: argparse.Namespace) -> int:
    """A sampling-only checkpoint (EMA weights, recipe, sample defaults, autoencoder / guide /
    key-frame model when present): what the package ships for ``vidiff demo``."""
    import torch

    pipe = _pipe(a.checkpoint, "cpu", a.guide, a.key)
    if a.decoder:
        try:
            pipe.replace_decoder(a.decoder)
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from e
    for p in (pipe, pipe.key_pipeline):  # a latent model: record what its cache came from
        d = p.experiment.data if p is not None else None
        if d is not None and d.kind == "latents" and not d.cache_source:
            from .data.latents import cache_source
            try:
                d.cache_source = cache_source(d)
            except (FileNotFoundError, OSError) as e:
                log.warning("export: %s", e)
    s = pipe.experiment.sample
    for key in ("sampler", "steps", "autoguidance_scale", "guidance_scale"):
        if getattr(a, key) is not None:
            setattr(s, key, getattr(a, key))
    if a.autoguidance_interval is not None:
        s.autoguidance_interval = _interval(a)
    if s.autoguidance_scale and pipe.guide_model is None:
        raise CLIError("--autoguidance-scale needs --guide (or a checkpoint with a guide model)")
    pipe.save_pretrained(a.out, dtype=torch.float16 if a.half else None)
    print(json.dumps({"out": a.out, "sampler": s.sampler, "steps": s.steps,
                      "guidance_scale": s.guidance_scale,
                      "autoguidance_scale": s.autoguidance_scale,
                      "autoguidance_interval": s.autoguidance_interval,
                      "guide": pipe.guide_model is not None,
                      "key": pipe.key_pipeline is not None, "half": a.half}))
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    import torch

    pipe = _pipe(a.checkpoint, a.device, a.guide)
    g = torch.Generator().manual_seed(a.seed)
    kw = {}
    if a.eta is not None:
        kw["eta"] = a.eta
    for item in a.opt:
        k, _, v = item.partition("=")
        try:
            kw[k.strip()] = int(v) if k.strip() == "corrector_steps" else float(v)
        except ValueError:
            raise CLIError(f"--opt {item!r}: expected KEY=NUMBER")
    t0 = time.perf_counter()
    vids = pipe(num_videos=a.num_videos, num_frames=a.num_frames, num_inference_steps=a.steps,
                sampler=a.sampler, guidance_scale=a.guidance_scale,
                autoguidance_scale=a.autoguidance_scale,
                autoguidance_interval=_interval(a), class_labels=a.class_label,
                generator=g, progress=not a.quiet, **kw)
    dt = time.perf_counter() - t0
    files = _write_outputs(list(vids), Path(a.out), a.fps)
    print(json.dumps({"seconds": round(dt, 2), **files}))
    return 0


def _moving_shapes_cfg(pipe=None, size: int | None = None, frames: int | None = None):
    from .data.moving_shapes import MovingShapesConfig

    cfg = pipe.experiment.data.moving_shapes if pipe is not None else MovingShapesConfig()
    if pipe is not None and pipe.experiment.data.kind == "latents":  # a cache of Moving Shapes
        from dataclasses import replace

        from .data.latents import cache_source
        d = pipe.experiment.data
        try:
            ms = cache_source(d).get("moving_shapes")
        except Exception as e:  # noqa: BLE001 - any unreadable cache: one clear line
            raise CLIError(f"{d.path}: cannot read the latent cache this model was trained on "
                           f"({e})") from e
        if ms is None:
            raise CLIError(f"{d.path} was not encoded from Moving Shapes")
        cfg = replace(MovingShapesConfig(**ms), num_frames=pipe.experiment.sample.num_frames
                      or d.num_frames)
    if size:
        cfg.size = size
    if frames:
        cfg.num_frames = frames
    return cfg


def cmd_eval(a: argparse.Namespace) -> int:
    import torch

    from .data.moving_shapes import generate_clip
    from .data.video_io import VideoReadError, read_video
    from .evaluation.metrics import evaluate_videos

    src = Path(a.target)
    expected = None
    if src.is_dir() and not (src / "config.json").exists() and not (src / "latest").exists() \
            and not (src / "checkpoints").exists():
        files = sorted(f for f in src.iterdir() if f.suffix.lower() in (".mp4", ".gif", ".avi",
                                                                        ".webm"))
        if not files:
            raise CLIError(f"{src}: no videos and no checkpoint")
        vids = []
        for f in files:
            try:
                vids.append(read_video(f))
            except VideoReadError as e:
                raise CLIError(str(e)) from e
        cfg = _moving_shapes_cfg(size=vids[0].shape[1], frames=vids[0].shape[0])
        cfg.max_objects = a.max_objects
        report = {"source": str(src), "kind": "videos"}
    elif a.target == "real":
        cfg = _moving_shapes_cfg(size=a.size, frames=a.num_frames)
        cfg.max_objects = a.max_objects
        vids = [generate_clip(cfg, 10 ** 6 + i).video for i in range(a.num_videos)]
        report = {"source": "real Moving Shapes clips", "kind": "reference"}
    else:
        pipe = _pipe(a.target, a.device, a.guide)
        if pipe.experiment.data.kind not in ("moving_shapes", "latents"):
            raise CLIError(f"{a.target} was not trained on Moving Shapes; `vidiff eval` measures "
                           "Moving Shapes clips (sample it and evaluate the folder instead)")
        cfg = _moving_shapes_cfg(pipe)
        g = torch.Generator().manual_seed(a.seed)
        vids, labels = [], []
        t0 = time.perf_counter()
        for start in range(0, a.num_videos, a.batch_size):
            n = min(a.batch_size, a.num_videos - start)
            lab = _labels(pipe, n, g)
            labels += [] if lab is None else lab.tolist()
            vids += list(pipe(num_videos=n, num_inference_steps=a.steps, sampler=a.sampler,
                              guidance_scale=a.guidance_scale, class_labels=lab,
                              autoguidance_scale=a.autoguidance_scale,
                              autoguidance_interval=_interval(a),
                              generator=g, progress=False))
        report = {"source": str(a.target), "kind": "checkpoint",
                  "sampler": a.sampler or pipe.experiment.sample.sampler,
                  "steps": a.steps or pipe.experiment.sample.steps, "guidance_scale": pipe.experiment.sample.guidance_scale if a.guidance_scale is None
                  else a.guidance_scale,
                  **_guidance_report(a, pipe),
                  "sampling_seconds": round(time.perf_counter() - t0, 2)}
        expected = _expected_counts(pipe, labels)
    m = evaluate_videos(vids, cfg, expected_counts=expected)
    ref_clips = [generate_clip(cfg, 10 ** 6 + i).video for i in range(max(32, len(vids)))]
    ref = evaluate_videos(ref_clips, cfg)
    report.update(m.to_dict())
    report["real_motion_smoothness"] = ref.motion_smoothness
    if m.motion_smoothness is not None and ref.motion_smoothness:
        report["smoothness_ratio"] = m.motion_smoothness / ref.motion_smoothness
    text = json.dumps(report, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text)
    return 0


def _labels(pipe, n: int, g):
    """Labels for a class-conditional checkpoint (drawn uniformly), else None."""
    if getattr(pipe.model.config, "num_classes", None) is None:
        return None
    return pipe.random_class_labels(n, g)


def _default(value, default):
    return default if value is None else value


def _interval(a: argparse.Namespace) -> tuple[float, float] | None:
    """``--autoguidance-interval LO HI`` as a tuple (None when not given), checked."""
    from .diffusion.guidance import guidance_interval

    iv = getattr(a, "autoguidance_interval", None)
    try:
        return guidance_interval(iv)
    except ValueError:
        raise CLIError(f"--autoguidance-interval {iv[0]:g} {iv[1]:g}: need 0 <= LO < HI <= 1")


def _guidance_report(a: argparse.Namespace, pipe) -> dict:
    """The autoguidance settings a command sampled with, for its JSON report."""
    s = pipe.experiment.sample
    iv = _default(_interval(a), s.autoguidance_interval)
    return {"autoguidance_scale": _default(a.autoguidance_scale, s.autoguidance_scale),
            "autoguidance_interval": None if iv is None else list(iv)}


def _expected_counts(pipe, labels: list[int]) -> list[int] | None:
    """Objects each clip must show when the labels are object counts (data.label=num_objects)."""
    if labels and pipe.experiment.data.label == "num_objects":
        return [lab + 1 for lab in labels]
    return None


def cmd_demo(a: argparse.Namespace) -> int:
    import torch

    from .evaluation.metrics import evaluate_videos
    from .data.moving_shapes import generate_clip

    ckpt = a.checkpoint or DEMO_CHECKPOINT()
    pipe = _pipe(str(ckpt), "cpu")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.perf_counter()
    lab = _labels(pipe, a.num_videos, g)
    vids = pipe(num_videos=a.num_videos, num_inference_steps=a.steps, sampler=a.sampler,
                class_labels=lab, autoguidance_scale=a.autoguidance_scale,
                autoguidance_interval=_interval(a), generator=g,
                progress=True)
    dt = time.perf_counter() - t0
    files = _write_outputs(list(vids), out / "demo.mp4", pipe.experiment.sample.fps)
    cfg = _moving_shapes_cfg(pipe)
    m = evaluate_videos(list(vids), cfg,
                        expected_counts=_expected_counts(pipe, [] if lab is None else lab.tolist()))
    ref = evaluate_videos([generate_clip(cfg, 10 ** 6 + i).video for i in range(64)], cfg)
    sampler = a.sampler or pipe.experiment.sample.sampler
    steps = a.steps or pipe.experiment.sample.steps
    metrics = {**m.to_dict(), "real_motion_smoothness": ref.motion_smoothness,
               "sampler": sampler, "steps": steps,
               "guidance_scale": pipe.experiment.sample.guidance_scale,
               **_guidance_report(a, pipe),
               "class_labels": None if lab is None else lab.tolist(),
               "sampling_seconds": round(dt, 2),
               "checkpoint": str(ckpt)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    files["metrics"] = str(out / "metrics.json")
    print(f"sampled {len(vids)} clips of {vids.shape[1]}x{vids.shape[2]}x{vids.shape[3]} in "
          f"{dt:.1f}s ({sampler}, {steps} steps)")
    print(f"validity {m.validity:.1%}  motion smoothness {m.motion_smoothness or float('nan'):.3f}px"
          f" (real clips: {ref.motion_smoothness:.3f}px)  temporal consistency "
          f"{m.temporal_consistency or float('nan'):.3f}")
    for k, v in files.items():
        print(f"{k:>14}: {v}")
    return 0


def cmd_long(a: argparse.Namespace) -> int:
    import torch

    from .pipelines.long_video import generate_long

    pipe = _pipe(a.checkpoint, a.device, key=a.key_checkpoint)
    t0 = time.perf_counter()
    res = generate_long(pipe, a.frames, a.out, mode=a.mode, context=a.context, stride=a.stride,
                        fps=a.fps,
                        cond_t="auto" if a.cond_t is None else a.cond_t,
                        uncond_weight=a.uncond_weight, num_videos=a.num_videos,
                        generator=torch.Generator().manual_seed(a.seed),
                        num_inference_steps=a.steps, sampler=a.sampler)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res))
    return 0


def cmd_autoencode(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .data.datasets import frames_to_tensor, resize_crop
    from .data.video_io import VideoWriter, read_video
    from .evaluation.metrics import psnr, ssim

    ae = _load_autoencoder(a.checkpoint)
    ft, fs = ae.factors
    frames = read_video(a.input, num_frames=a.max_frames) if a.max_frames else read_video(a.input)
    x = frames_to_tensor(frames)
    if a.size:
        x = resize_crop(x, a.size)
    F_, H, W = x.shape[1:]
    F_, H, W = F_ - F_ % ft, H - H % fs, W - W % fs
    if F_ == 0:
        raise CLIError(f"{a.input}: fewer than f_t={ft} frames")
    x = x[:, :F_, :H, :W][None]
    ref = ((x[0] + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
    t0 = time.perf_counter()
    with torch.no_grad():
        z = ae.encode_chunked(x, chunk=a.chunk)
        outs = []
        with VideoWriter(a.out, a.fps) as w:
            for part in ae.decode_chunked(z, chunk=a.chunk):
                fr = ((part[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
                w.write(fr)
                outs.append(fr)
    rec = np.concatenate(outs)
    report = {"input": str(a.input), "frames": int(F_), "size": [int(H), int(W)],
              "latent_shape": list(z.shape[1:]), "psnr": psnr(ref, rec), "ssim": ssim(ref, rec),
              "seconds": round(time.perf_counter() - t0, 2), "out": str(a.out)}
    print(json.dumps(report))
    return 0


def _load_autoencoder(path: str):
    from .models import VideoAutoencoder, load_model
    from .training.checkpoint import resolve_checkpoint

    try:
        ae = load_model(resolve_checkpoint(path))
    except FileNotFoundError as e:
        raise CLIError(str(e)) from e
    if not isinstance(ae, VideoAutoencoder):
        raise CLIError(f"{path} holds a {type(ae).__name__}, not a VideoAutoencoder")
    return ae.eval()


def cmd_encode_latents(a: argparse.Namespace) -> int:
    from dataclasses import asdict

    import torch

    from .data.datasets import MovingShapesDataset, VideoFolderDataset
    from .data.latents import encode_to_cache
    from .data.moving_shapes import MovingShapesConfig

    if a.threads:
        torch.set_num_threads(a.threads)
    ae = _load_autoencoder(a.checkpoint)
    ft, fs = ae.factors
    if a.frames % ft or a.size % fs:
        raise CLIError(f"--frames must be a multiple of f_t={ft} and --size of f_s={fs}")
    meta = {"autoencoder": str(a.checkpoint)}
    labels = None
    if a.videos:
        ds = VideoFolderDataset(a.videos, a.frames, a.size, on_error="skip", seed=a.seed)
        clips = (ds[i % len(ds)]["video"] for i in range(a.num_clips))
        meta["source"] = str(a.videos)
    else:
        cfg = MovingShapesConfig(size=a.size, num_frames=a.frames, min_objects=a.min_objects,
                                 max_objects=a.max_objects)
        ds = MovingShapesDataset(cfg, seed=a.seed, label="num_objects")
        items = (ds[i] for i in range(a.num_clips))
        labels = []

        def clips_with_labels():
            for it in items:
                labels.append(it["label"])
                yield it["video"]
        clips = clips_with_labels()
        meta.update(source="moving_shapes", moving_shapes=asdict(cfg))
    t0 = time.perf_counter()
    out = encode_to_cache(ae, clips, a.out, meta, labels=labels, batch_size=a.batch_size,
                          total=a.num_clips)
    print(json.dumps({"out": str(out), "clips": a.num_clips, "seconds":
                      round(time.perf_counter() - t0, 1)}))
    return 0


def _autoguidance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--autoguidance-scale", type=float,
                   help="autoguidance weight w: (1+w) D - w D_guide (default: the checkpoint's)")
    p.add_argument("--autoguidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="autoguide only at noise levels LO < t <= HI (default: the checkpoint's; "
                   "every step)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidiff", description="Video diffusion models: train, "
                                "sample, evaluate.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version="vidiff 0.1.0")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a recipe (resumes from its latest checkpoint)")
    t.add_argument("config", help="YAML recipe, e.g. configs/vdm_tiny.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=100 (repeatable)")
    t.add_argument("--steps", type=_positive("--steps"), help="train until this many steps")
    t.add_argument("--out-dir", help="run folder (default: train.out_dir)")
    t.set_defaults(func=cmd_train)

    from .diffusion import SAMPLERS

    s = sub.add_parser("sample", help="sample videos from a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("--num-frames", type=_positive("--num-frames"))
    s.add_argument("--num-videos", type=_positive("--num-videos"), default=4)
    s.add_argument("--steps", type=_positive("--steps"), help="default: the checkpoint's")
    s.add_argument("--sampler", choices=sorted(SAMPLERS), help="default: the checkpoint's")
    s.add_argument("--eta", type=float, help="ddim: 0 deterministic, 1 ancestral-like")
    s.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="sampler option: gamma (ancestral, pc), delta, corrector_steps (pc)")
    s.add_argument("--guidance-scale", type=float,
                   help="classifier-free guidance (default: the checkpoint's)")
    _autoguidance_args(s)
    s.add_argument("--guide", help="a weaker checkpoint of the same data to autoguide with")
    s.add_argument("--class-label", type=int, help="class-conditional models; default: random")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fps", type=float, default=8.0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--out", default="out.mp4", help="output .mp4/.gif (+ gif and contact sheet)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("eval", help="Moving Shapes metrics of a checkpoint, a folder of videos, "
                       "or 'real' (reference clips)")
    e.add_argument("target")
    e.add_argument("--num-videos", type=_positive("--num-videos"), default=64)
    e.add_argument("--batch-size", type=_positive("--batch-size"), default=16)
    e.add_argument("--steps", type=_positive("--steps"), help="default: the checkpoint's")
    e.add_argument("--sampler", choices=sorted(SAMPLERS), help="default: the checkpoint's")
    e.add_argument("--guidance-scale", type=float, help="default: the checkpoint's")
    _autoguidance_args(e)
    e.add_argument("--guide", help="a weaker checkpoint of the same data to autoguide with")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--size", type=int, default=32)
    e.add_argument("--num-frames", type=int, default=8)
    e.add_argument("--max-objects", type=int, default=2)
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", help="also write the report here")
    e.set_defaults(func=cmd_eval)

    lg = sub.add_parser("long", help="a long video, window by window, streamed to a file")
    lg.add_argument("checkpoint")
    lg.add_argument("--frames", type=_positive("--frames"), default=1024)
    lg.add_argument("--mode", choices=["autoregressive", "hierarchical"], default="autoregressive")
    lg.add_argument("--context", type=int, help="given frames per window (model-space frames)")
    lg.add_argument("--stride", type=int, help="hierarchical: key-frame stride in model frames "
                    "(default: the key model's own frame stride)")
    lg.add_argument("--key-checkpoint", help="hierarchical: the key-frame-rate model (default: "
                    "the one the checkpoint bundles, if any)")
    lg.add_argument("--cond-t", type=float, default=None,
                    help="noise level s of the given frames (conditional latent perturbation); "
                    "default: 0 for models trained with frame masks, else VDM-style")
    lg.add_argument("--uncond-weight", type=float, default=0.0, help="unconditional guidance w")
    lg.add_argument("--steps", type=_positive("--steps"), default=50)
    lg.add_argument("--sampler", choices=sorted(SAMPLERS), default="ddim")
    lg.add_argument("--num-videos", type=_positive("--num-videos"), default=1,
                    help="videos sampled as one batch, written to OUT_0, OUT_1, ...")
    lg.add_argument("--seed", type=int, default=0)
    lg.add_argument("--fps", type=float, default=8.0)
    lg.add_argument("--device", default="cpu")
    lg.add_argument("--out", default="long.mp4")
    lg.set_defaults(func=cmd_long)

    ae = sub.add_parser("autoencode", help="reconstruct a video with a video autoencoder; "
                        "reports PSNR/SSIM")
    ae.add_argument("input")
    ae.add_argument("--checkpoint", required=True, help="a VideoAutoencoder checkpoint")
    ae.add_argument("--out", default="recon.mp4")
    ae.add_argument("--size", type=int, help="resize (shorter side) and centre-crop first")
    ae.add_argument("--max-frames", type=int)
    ae.add_argument("--chunk", type=_positive("--chunk"), default=4, help="latent frames a window")
    ae.add_argument("--fps", type=float, default=8.0)
    ae.set_defaults(func=cmd_autoencode)

    el = sub.add_parser("encode-latents", help="encode clips once into a latent cache "
                        "(train latent diffusion on it with data.kind=latents)")
    el.add_argument("checkpoint", help="a VideoAutoencoder checkpoint")
    el.add_argument("--out", required=True, help="the cache (.safetensors)")
    el.add_argument("--num-clips", type=_positive("--num-clips"), default=1000)
    el.add_argument("--frames", type=_positive("--frames"), default=64, help="pixel frames a clip")
    el.add_argument("--size", type=_positive("--size"), default=64)
    el.add_argument("--videos", help="a folder or CSV of videos (default: Moving Shapes)")
    el.add_argument("--min-objects", type=int, default=1)
    el.add_argument("--max-objects", type=int, default=2)
    el.add_argument("--batch-size", type=_positive("--batch-size"), default=8)
    el.add_argument("--seed", type=int, default=0)
    el.add_argument("--threads", type=int)
    el.set_defaults(func=cmd_encode_latents)

    x = sub.add_parser("export", help="write a sampling-only checkpoint (EMA weights, recipe, "
                       "sample defaults, autoencoder / guide model)")
    x.add_argument("checkpoint")
    x.add_argument("--out", required=True, help="the folder to write")
    x.add_argument("--guide", help="bundle this weaker checkpoint as the autoguidance model")
    x.add_argument("--key", help="bundle this checkpoint as the key-frame model of "
                   "hierarchical long video (same autoencoder)")
    x.add_argument("--decoder", help="an autoencoder checkpoint whose decoder was fine-tuned "
                   "with the encoder frozen: decode with it instead")
    x.add_argument("--half", action="store_true", help="store the weights as float16 "
                   "(half the size; loading casts back to float32)")
    _autoguidance_args(x)
    x.add_argument("--guidance-scale", type=float, help="default classifier-free guidance")
    x.add_argument("--sampler", choices=sorted(SAMPLERS), help="default sampler")
    x.add_argument("--steps", type=_positive("--steps"), help="default number of steps")
    x.set_defaults(func=cmd_export)

    d = sub.add_parser("demo", help="sample Moving Shapes clips from the shipped checkpoint")
    d.add_argument("--out", default="demo_out", help="output folder")
    d.add_argument("--num-videos", type=_positive("--num-videos"), default=16)
    d.add_argument("--steps", type=_positive("--steps"), help="default: the checkpoint's")
    d.add_argument("--sampler", choices=sorted(SAMPLERS),
                   help="default: the checkpoint's own (ancestral for the shipped one)")
    _autoguidance_args(d)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--checkpoint", help="use another checkpoint than the shipped one")
    d.set_defaults(func=cmd_demo)
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
        from .config import ConfigError
        from .data.video_io import VideoReadError

        if a.debug or not isinstance(e, (CLIError, ConfigError, VideoReadError, ValueError,
                                         FileNotFoundError)):
            raise
        print(f"vidiff: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
