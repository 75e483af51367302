"""Speed of vidiff's pseudo-3D U-Net against diffusers' ``UNet3DConditionModel`` and
``UNetMotionModel`` (AnimateDiff: a ``UNet2DConditionModel`` plus a ``MotionAdapter``), on CPU.

vidiff: ``UNet3D(UNet3DConfig(temporal_conv=True, context_dim=384, ...))`` - a 2D 3x3 conv
followed by a temporal 1D conv (Make-A-Video eq. 3) twice in every ResBlock; at the attention
levels spatial self-attention, text cross-attention and temporal attention (Make-A-Video's
pseudo-3D attention). The peers get the same channels, levels, residual blocks per level,
attention levels (cross-attention blocks where vidiff attends), heads of ``--head-channels``,
context width and frames. Their architectures still do different work at the same settings:

* ``UNet3DConditionModel`` (ModelScope): after every resnet a ``TemporalConvLayer`` of four
  GroupNorm-SiLU-Conv3d(3x1x1) layers; a temporal transformer on the input (8 heads); spatial
  and temporal transformers with feed-forward layers;
* ``UNetMotionModel``: no temporal convolution; a motion module (temporal transformer with a
  feed-forward layer) after every layer of every level and in the middle block;
* vidiff's attention layers have no feed-forward layer.

So the parameter counts and forward GFLOPs (``torch.utils.flop_counter``) are printed next to
the times. Every cell is the median of ``--repeats`` runs after ``--warmup`` runs, the models
alternating within each repeat (so a slow spell of a shared machine hits all of them); a
training step is forward + MSE loss + backward + AdamW, sampling is one forward under
``no_grad``; bf16 is ``torch.autocast("cpu", torch.bfloat16)``.

    python benchmarks/pseudo3d_speed.py            # full (about 6 minutes on 2 idle cores)
    python benchmarks/pseudo3d_speed.py --quick    # 32x32 bf16 only: about a minute
    python benchmarks/pseudo3d_speed.py --profile vidiff --sizes 64 --dtypes bf16

Needs diffusers (``pip install vidiff[diffusers]``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch

from vidiff.models import UNet3D, UNet3DConfig

MODELS = ("vidiff", "diffusers-3d", "diffusers-motion")


def build(name: str, a: argparse.Namespace) -> tuple[torch.nn.Module, Callable]:
    """``(model, forward(x, t, context) -> prediction)``, x ``(B, C, F, H, W)``, t in [0, 1]."""
    ch, L = a.channels, a.layers
    levels = tuple(i for i in range(len(ch)) if i not in a.plain_levels)
    heads = [max(1, c // a.head_channels) for c in ch]
    if name == "vidiff":
        m = UNet3D(UNet3DConfig(
            in_channels=4, out_channels=4, model_channels=ch[0],
            channel_mult=tuple(c // ch[0] for c in ch), num_res_blocks=L,
            attention_levels=levels, temporal_conv=True, context_dim=a.context_dim,
            head_channels=a.head_channels))
        return m, lambda x, t, c: m(x, t, context=c)
    import diffusers
    diffusers.utils.logging.set_verbosity_error()  # no notes about accelerate / dtypes
    down = [("CrossAttnDownBlock{}" if i in levels else "DownBlock{}") for i in range(len(ch))]
    up = [("CrossAttnUpBlock{}" if i in levels else "UpBlock{}") for i in reversed(range(len(ch)))]
    common = dict(sample_size=max(a.sizes), in_channels=4, out_channels=4, layers_per_block=L,
                  block_out_channels=tuple(ch), norm_num_groups=32,
                  cross_attention_dim=a.context_dim)
    if name == "diffusers-3d":
        # in UNet3DConditionModel's blocks attention_head_dim is the channels per head
        m = diffusers.UNet3DConditionModel(
            down_block_types=tuple(d.format("3D") for d in down),
            up_block_types=tuple(u.format("3D") for u in up),
            attention_head_dim=a.head_channels, **common)
        return m, lambda x, t, c: m(x, t * 1000, encoder_hidden_states=c).sample
    if name == "diffusers-motion":
        # in UNet2DConditionModel attention_head_dim is the number of heads (a diffusers quirk)
        unet = diffusers.UNet2DConditionModel(
            down_block_types=tuple(d.format("2D") for d in down),
            up_block_types=tuple(u.format("2D") for u in up),
            attention_head_dim=tuple(heads), **common)
        adapter = diffusers.MotionAdapter(
            block_out_channels=tuple(ch), motion_layers_per_block=L,
            motion_num_attention_heads=tuple(heads), motion_norm_num_groups=32,
            use_motion_mid_block=True)
        m = diffusers.UNetMotionModel.from_unet2d(unet, adapter)
        # UNetMotionModel takes one context per frame (AnimateDiffPipeline repeats it)
        return m, lambda x, t, c: m(x, t * 1000, encoder_hidden_states=c.repeat_interleave(
            x.shape[2], dim=0)).sample
    raise ValueError(f"unknown model {name!r}; known: {MODELS}")


def make_step(model: torch.nn.Module, fwd: Callable, mode: str, dtype: str, x, t, c):
    ac = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")
    if mode == "sample":
        @torch.no_grad()
        def sample():
            with ac:
                fwd(x, t, c)
        return sample
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    target = torch.randn_like(x)

    def train():
        with ac:
            out = fwd(x, t, c)
        (out.float() - target).square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return train


def forward_gflops(fwd: Callable, x, t, c) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fwd(x, t, c)
    return fc.get_total_flops() / 1e9


def measure(models: dict, a: argparse.Namespace) -> list[dict]:
    rows = []
    for size in a.sizes:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(a.batch, 4, a.frames, size, size, generator=g)
        t = torch.rand(a.batch, generator=g)
        c = torch.randn(a.batch, a.context_len, a.context_dim, generator=g)
        flops = {n: forward_gflops(f, x, t, c) for n, (m, f) in models.items()} \
            if a.flops else {}
        for dtype in a.dtypes:
            for mode in a.modes:
                steps = {}
                for n, (m, f) in models.items():
                    m.train(mode == "train")
                    steps[n] = make_step(m, f, mode, dtype, x, t, c)
                times = {n: [] for n in models}
                for r in range(a.warmup + a.repeats):
                    order = list(models)[r % len(models):] + list(models)[:r % len(models)]
                    for n in order:  # alternate, and rotate who goes first
                        t0 = time.perf_counter()
                        steps[n]()
                        if r >= a.warmup:
                            times[n].append(time.perf_counter() - t0)
                for n in models:
                    rows.append(dict(size=size, dtype=dtype, mode=mode, model=n,
                                     ms=1000 * statistics.median(times[n]),
                                     spread=1000 * (max(times[n]) - min(times[n])),
                                     gflops=flops.get(n)))
                print(f"# done {size}x{size} {dtype} {mode}: " + ", ".join(
                    f"{r['model']} {r['ms']:.0f} ms" for r in rows[-len(models):]), flush=True)
                del steps
    return rows


def table(rows: list[dict], models: dict) -> None:
    peers = [n for n in models if n != "vidiff"]
    print("| size | dtype | step | " + " | ".join(f"{n} ms" for n in models) + " | "
          + " | ".join(f"{p} / vidiff" for p in peers) + " |")
    print("|---" * (3 + len(models) + len(peers)) + "|")
    keys = sorted({(r["size"], r["dtype"], r["mode"]) for r in rows},
                  key=lambda k: (k[0], k[1] != "fp32", k[2] != "train"))
    for k in keys:
        by = {r["model"]: r for r in rows if (r["size"], r["dtype"], r["mode"]) == k}
        cells = [f"{by[n]['ms']:.0f} (±{by[n]['spread'] / 2:.0f})" for n in models]
        ratios = [f"{by[p]['ms'] / by['vidiff']['ms']:.2f}x" if "vidiff" in by else ""
                  for p in peers]
        print(f"| {k[0]}x{k[0]} | {k[1]} | {k[2]} | " + " | ".join(cells + ratios) + " |")
    print("\n| model | params (M) | " + " | ".join(
        f"fwd GFLOP {s}x{s}" for s in sorted({r['size'] for r in rows})) + " |")
    print("|---|---|" + "---|" * len({r["size"] for r in rows}))
    for n, (m, _) in models.items():
        fl = [next((f"{r['gflops']:.1f}" for r in rows if r["model"] == n and r["size"] == s
                    and r["gflops"] is not None), "-") for s in sorted({r["size"] for r in rows})]
        print(f"| {n} | {sum(p.numel() for p in m.parameters()) / 1e6:.2f} | "
              + " | ".join(fl) + " |")


def profile(models: dict, a: argparse.Namespace) -> None:
    """torch.profiler of a training step of one model: the top operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile as prof
    size, dtype = a.sizes[0], a.dtypes[0]
    x = torch.randn(a.batch, 4, a.frames, size, size)
    t, c = torch.rand(a.batch), torch.randn(a.batch, a.context_len, a.context_dim)
    m, f = models[a.profile]
    step = make_step(m, f, a.modes[0], dtype, x, t, c)
    step()
    with prof(activities=[ProfilerActivity.CPU], record_shapes=False) as p:
        step()
    print(f"# {a.profile}: one {a.modes[0]} step, {size}x{size}, {dtype}")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.profile_rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda s: tuple(int(v) for v in s.split(","))  # noqa: E731
    p.add_argument("--models", type=lambda s: tuple(s.split(",")), default=MODELS)
    p.add_argument("--channels", type=ints, default=(32, 64, 64))
    p.add_argument("--layers", type=int, default=1, help="residual blocks per level")
    p.add_argument("--plain-levels", type=ints, default=(0,),
                   help="levels without attention (the rest have spatial, cross and temporal)")
    p.add_argument("--head-channels", type=int, default=32)
    p.add_argument("--context-dim", type=int, default=384)
    p.add_argument("--context-len", type=int, default=77)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--sizes", type=ints, default=(32, 64))
    p.add_argument("--dtypes", type=lambda s: tuple(s.split(",")), default=("fp32", "bf16"))
    p.add_argument("--modes", type=lambda s: tuple(s.split(",")), default=("train", "sample"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-flops", dest="flops", action="store_false")
    p.add_argument("--quick", action="store_true", help="32x32 bf16 only, no FLOP count")
    p.add_argument("--profile", choices=MODELS, help="profile one step of this model instead")
    p.add_argument("--profile-rows", type=int, default=25)
    a = p.parse_args()
    if a.quick:
        a.sizes, a.dtypes, a.flops = (32,), ("bf16",), False
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    models = {n: build(n, a) for n in a.models}
    if a.profile:
        return profile(models, a)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows = measure(models, a)
    print(f"\n# batch {a.batch}, {a.frames} frames, channels {a.channels}, {a.layers} res "
          f"block(s)/level, attention at levels != {a.plain_levels}, heads of "
          f"{a.head_channels} ch, context {a.context_len}x{a.context_dim}; "
          f"{torch.get_num_threads()} threads; median of {a.repeats} after {a.warmup} warm-up "
          f"(± half the range); load average {load:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"{time.perf_counter() - t0:.0f} s")
    table(rows, models)


if __name__ == "__main__":
    main()
