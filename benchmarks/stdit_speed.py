"""Speed of vidiff's ST-DiT against diffusers' ``LatteTransformer3DModel`` (the closest public
spatial-temporal DiT: Latte, alternating spatial and temporal transformer blocks, adaLN-single),
at matched width, depth (pairs of blocks), heads, patch and tokens, with text cross-attention
where Latte has it (the spatial blocks: ``temporal_cross_attention=False``; two more columns
time the recipes' default, Open-Sora's, which also attends to the text in the temporal
blocks); on CPU, fp32 and bf16 (``torch.autocast``). A training step is forward + MSE + backward +
AdamW; sampling is one forward under ``no_grad``. Every cell is the median of ``--repeats``
runs after a warm-up, the two models alternating within a repeat; the ratio is Latte's time
over vidiff's.

Then the time of one 16x64x64 clip from text + a trajectory with 25 Euler steps through the
whole Tora pipeline (text encoder, trajectory autoencoder, ST-DiT with its adapter, LVDM
decoder), with the tiny recipes' networks at random weights (time does not depend on them).

    python benchmarks/stdit_speed.py [--repeats 5 --threads 2]

Needs diffusers (``pip install vidiff[diffusers]``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from vidiff.models import STDiT, STDiTConfig

ROOT = Path(__file__).resolve().parents[1]


def build(name: str, a: argparse.Namespace):
    D = a.heads * a.head_dim
    if name.startswith("vidiff"):
        m = STDiT(STDiTConfig(in_channels=a.channels, patch_size=a.patch, hidden_size=D,
                              depth=a.depth, num_heads=a.heads, context_dim=a.context_dim,
                              temporal_cross_attention=name == "vidiff+tx"))
        return m, lambda x, t, c: m(x, t, context=c)
    import diffusers
    diffusers.utils.logging.set_verbosity_error()
    m = diffusers.LatteTransformer3DModel(
        num_attention_heads=a.heads, attention_head_dim=a.head_dim, in_channels=a.channels,
        out_channels=a.channels, num_layers=a.depth, cross_attention_dim=D,
        sample_size=a.size, patch_size=a.patch, activation_fn="gelu-approximate",
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        caption_channels=a.context_dim, video_length=a.frames, num_embeds_ada_norm=1000)
    return m, lambda x, t, c: m(x, (t * 999).long(), encoder_hidden_states=c,
                                return_dict=False)[0]


def step_fns(model, fwd, x, t, c):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train():
        loss = (fwd(x, t, c).float() - x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sample():
        with torch.no_grad():
            fwd(x, t, c)
    return train, sample


def timed(fn, bf16: bool) -> float:
    t0 = time.perf_counter()
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        fn()
    return time.perf_counter() - t0


def tora_clip_seconds(steps: int) -> float:
    """One clip through the Tora pipeline at the tiny recipes' sizes (random weights)."""
    from vidiff.config import load_config
    from vidiff.models import build_model
    from vidiff.pipelines import TrajectoryPipeline

    cfg = load_config(ROOT / "configs" / "tora_tiny.yaml")
    ae_cfg = load_config(ROOT / "configs" / "tora_traj_ae_tiny.yaml")
    lvdm = load_config(ROOT / "configs" / "lvdm_ae_tiny.yaml")
    cfg.sample.steps = steps
    model = build_model(dict(cfg.model))
    model.sample_shape = (4, 16)
    pipe = TrajectoryPipeline(model, cfg.diffusion, cfg, autoencoder=build_model(
        dict(lvdm.model)))
    pipe.register_modules(trajectory_autoencoder=build_model(dict(ae_cfg.model)))
    path = np.stack([np.linspace(10, 54, 16), np.full(16, 32.0)], 1)[None]
    pipe.set_progress_bar_config(disable=True)
    pipe(prompt="a red circle", trajectories=path)  # warm-up (loads the text encoder)
    t0 = time.perf_counter()
    pipe(prompt="a red circle", trajectories=path, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--size", type=int, default=16, help="latent side")
    p.add_argument("--patch", type=int, default=2)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--context-dim", type=int, default=384)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clip-steps", type=int, default=25)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.batch, a.channels, a.frames, a.size, a.size)
    t, c = torch.rand(a.batch), torch.randn(a.batch, 16, a.context_dim)
    models = {n: build(n, a) for n in ("vidiff", "vidiff+tx", "latte")}
    params = {n: sum(q.numel() for q in m.parameters()) / 1e6 for n, (m, _) in models.items()}
    tokens = a.frames * (a.size // a.patch) ** 2
    print(f"# {tokens} tokens ({a.frames} frames x {(a.size // a.patch) ** 2}), width "
          f"{a.heads * a.head_dim}, {a.depth} block pairs, batch {a.batch}, {a.threads} threads;"
          f" params vidiff {params['vidiff']:.2f} M (+ temporal cross-attention "
          f"{params['vidiff+tx']:.2f} M), Latte {params['latte']:.2f} M")
    print("| precision | step | vidiff ms | Latte ms | Latte / vidiff | vidiff + temporal "
          "cross-attn ms | Latte / it |")
    print("|---|---|---|---|---|---|---|")
    for bf16 in (False, True):
        fns = {n: dict(zip(("train", "sample"), step_fns(m, f, x, t, c)))
               for n, (m, f) in models.items()}
        for kind in ("train", "sample"):
            for n in fns:  # warm-up
                timed(fns[n][kind], bf16)
            times = {n: [] for n in fns}
            for _ in range(a.repeats):
                for n in fns:
                    times[n].append(timed(fns[n][kind], bf16))
            med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
            tx = med["vidiff+tx"]
            print(f"| {'bf16' if bf16 else 'fp32'} | {kind} | {med['vidiff']:.1f} | "
                  f"{med['latte']:.1f} | {med['latte'] / med['vidiff']:.2f}x | {tx:.1f} | "
                  f"{med['latte'] / tx:.2f}x |", flush=True)
    if a.clip_steps:
        s = tora_clip_seconds(a.clip_steps)
        print(f"\none 16x64x64 clip, text + trajectory, {a.clip_steps} Euler steps, "
              f"{a.threads} threads: {s:.2f} s")


if __name__ == "__main__":
    main()
