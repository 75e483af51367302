"""Training-step and sampling throughput of vidiff's space-time U-Net against diffusers'
``UNet3DConditionModel`` and video-diffusion-pytorch's ``Unet3D``, on the same input, at matched
channels (32, 64, 64), levels (3), residual blocks per level (1) and frames; plus each model's
FLOPs per training step and achieved FLOP/s against this machine's measured matmul peak.

Matched channels do not mean matched work: vidiff puts attention after every residual block
with as many attention channels as the block has, video-diffusion-pytorch attends after every
second block with 32 attention channels at every level. So the table also gives the speed-up
per FLOP (throughput ratio times work ratio), next to the plain per-clip speed-up.

Attention placement is each architecture's own, so each peer is paired with a vidiff U-Net that
has attention where, of the kind and of the width the peer has: diffusers (softmax attention
blocks at levels 1-2, as wide as the block) with vidiff softmax attention at levels 1-2;
video-diffusion-pytorch (linear spatial attention and softmax temporal attention at every level,
one head of 32 channels) with vidiff linear spatial + softmax temporal attention at every level,
one head of 32 channels (``num_heads: 1``). Listed too, unpaired: the same vidiff U-Net with
attention as wide as the block (its default), and vidiff with softmax attention at every level
(32x32 = 1,024 tokens at full resolution).

    python benchmarks/unet_speed.py [--batch 4 --frames 8 --size 32 --repeats 5 --bf16]

Peers (benchmark-only; keep the CPU torch):
    pip install -c constraints/cpu.txt diffusers
    pip install --no-deps video-diffusion-pytorch && pip install einops-exts rotary-embedding-torch
video-diffusion-pytorch imports torchvision (for its GIF dataset helpers only) at module level;
there is no CPU torchvision here, so a stand-in module is registered before importing it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types

import torch

from vidiff.models import UNet3D, UNet3DConfig


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n ** 3 / median_time(lambda: a @ b, repeats)


def load_peers():
    peers = {}
    try:
        from diffusers import UNet3DConditionModel
        peers["diffusers"] = UNet3DConditionModel
    except Exception as e:  # pragma: no cover - optional
        print(f"# diffusers not available: {e}", file=sys.stderr)
    try:
        if "torchvision" not in sys.modules:
            tv = types.ModuleType("torchvision")
            tv.transforms = types.ModuleType("torchvision.transforms")
            tv.transforms.ToTensor = lambda *a, **k: None
            tv.utils = types.ModuleType("torchvision.utils")
            sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                                "torchvision.utils": tv.utils})
        from video_diffusion_pytorch import Unet3D
        peers["video-diffusion-pytorch"] = Unet3D
    except Exception as e:  # pragma: no cover - optional
        print(f"# video-diffusion-pytorch not available: {e}", file=sys.stderr)
    return peers


def build(name: str, peers: dict, ch: int = 32):
    """(model, forward(x, t) -> out) for each contender."""
    if name.startswith("vidiff"):
        levels = (1, 2) if "[attn 1,2]" in name else (0, 1, 2)
        m = UNet3D(UNet3DConfig(model_channels=ch, channel_mult=(1, 2, 2), num_res_blocks=1,
                                attention_levels=levels, temporal_attention_levels=levels,
                                spatial_attention="linear" if "linear" in name else "softmax",
                                head_channels=32, num_heads=1 if "1 head" in name else None))
        return m, lambda x, t: m(x, t)
    if name == "diffusers":
        m = peers["diffusers"](
            sample_size=32, in_channels=3, out_channels=3,
            down_block_types=("DownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D"),
            up_block_types=("CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "UpBlock3D"),
            block_out_channels=(ch, 2 * ch, 2 * ch), layers_per_block=1, norm_num_groups=32,
            cross_attention_dim=32, attention_head_dim=(ch // 32) or 1)
        ctx = {}

        def fwd(x, t):
            if "c" not in ctx or ctx["c"].shape[0] != x.shape[0]:
                ctx["c"] = torch.zeros(x.shape[0], 1, 32)  # one null text token
            return m(x, t * 1000, encoder_hidden_states=ctx["c"]).sample
        return m, fwd
    if name == "video-diffusion-pytorch":
        m = peers["video-diffusion-pytorch"](dim=ch, dim_mults=(1, 2, 2), channels=3,
                                             attn_heads=max(1, ch // 32), attn_dim_head=32)
        return m, lambda x, t: m(x, t * 1000)
    raise ValueError(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for every model")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    peers = load_peers()
    x = torch.randn(a.batch, 3, a.frames, a.size, a.size)
    t = torch.rand(a.batch)
    rows = []
    names = ["vidiff [attn 1,2]", "diffusers", "vidiff [attn all, linear spatial, 1 head]",
             "video-diffusion-pytorch", "vidiff [attn all, linear spatial]", "vidiff [attn all]"]
    for name in names:
        if not name.startswith("vidiff") and name not in peers:
            continue
        m, fwd = build(name, peers)
        params = sum(p.numel() for p in m.parameters())
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
        ac = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16)

        def train_step():
            with ac:
                out = fwd(x, t)
            out.float().square().mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        @torch.no_grad()
        def sample_step():
            with ac:
                fwd(x, t)

        m.train()
        tt = median_time(train_step, a.repeats)
        m.eval()
        ts = median_time(sample_step, a.repeats)
        from torch.utils.flop_counter import FlopCounterMode
        m.train()
        with FlopCounterMode(display=False) as fc:
            with ac:
                out = fwd(x, t)
            out.float().square().mean().backward()
        flops = fc.get_total_flops()
        opt.zero_grad(set_to_none=True)
        rows.append({"model": name, "params_M": params / 1e6, "train_clips_s": a.batch / tt,
                     "sample_clips_s": a.batch / ts, "train_step_s": tt, "flops": flops})
    peak = matmul_peak(torch.bfloat16 if a.bf16 else torch.float32)
    print(f"# input {a.batch}x3x{a.frames}x{a.size}x{a.size}, {'bf16 autocast' if a.bf16 else 'fp32'}, "
          f"{torch.get_num_threads()} threads, median of {a.repeats}")
    print(f"# measured matmul peak: {peak / 1e9:.0f} GFLOP/s")
    print("| model | params (M) | GFLOP / train step | train clips/s | sample (denoiser evals) "
          "clips/s | vidiff speed-up train / sample | vidiff train speed-up per FLOP | "
          "achieved GFLOP/s (% of peak) |")
    print("|---|---|---|---|---|---|---|---|")
    by = {r["model"]: r for r in rows}
    pair = {"diffusers": "vidiff [attn 1,2]",
            "video-diffusion-pytorch": "vidiff [attn all, linear spatial, 1 head]"}
    for r in rows:
        sp = pf = ""
        if r["model"] in pair and pair[r["model"]] in by:
            v = by[pair[r["model"]]]
            sp = f"{v['train_clips_s'] / r['train_clips_s']:.2f}x / {v['sample_clips_s'] / r['sample_clips_s']:.2f}x"
            # throughput ratio times the ratio of work per step: who does more with each FLOP
            pf = f"{(v['flops'] / v['train_step_s']) / (r['flops'] / r['train_step_s']):.2f}x"
        g = r["flops"] / r["train_step_s"]
        print(f"| {r['model']} | {r['params_M']:.2f} | {r['flops'] / 1e9:.1f} | "
              f"{r['train_clips_s']:.2f} | {r['sample_clips_s']:.2f} | {sp} | {pf} | "
              f"{g / 1e9:.0f} ({100 * g / peak:.0f}%) |")


if __name__ == "__main__":
    main()
