"""``vidiff autoencode``: reconstruct a video with a video autoencoder; reports PSNR/SSIM."""

from __future__ import annotations

import argparse
import json
import time

from .args import add_options, positive
from .base import CLIError, Command, load_autoencoder


class Autoencode(Command):
    name = "autoencode"
    help = "reconstruct a video with a video autoencoder; reports PSNR/SSIM"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("input")
        p.add_argument("--checkpoint", required=True, help="a video autoencoder (VideoAutoencoder, MCDVAE) or a latent checkpoint holding one")
        p.add_argument("--out", default="recon.mp4")
        p.add_argument("--size", type=positive("--size"),
                       help="resize (shorter side) and centre-crop first")
        p.add_argument("--max-frames", type=positive("--max-frames"))
        p.add_argument("--chunk", type=positive("--chunk"), default=4,
                       help="latent frames (MCD-VAE: clip windows) a coding call")
        add_options(p, "--fps")

    def run(self, a: argparse.Namespace) -> int:
        import numpy as np
        import torch

        from ..data.datasets import frames_to_tensor, resize_crop
        from ..data.video_io import VideoWriter, check_writable, read_video, to_uint8
        from ..devices import is_out_of_memory
        from ..evaluation.metrics import psnr, ssim

        check_writable(a.out)

        ae = load_autoencoder(a.checkpoint)
        ft, fs = ae.factors
        frames = (read_video(a.input, num_frames=a.max_frames) if a.max_frames
                  else read_video(a.input))
        x = frames_to_tensor(frames)
        if a.size:
            x = resize_crop(x, a.size)
        F_, H, W = x.shape[1:]
        F_, H, W = F_ - F_ % ft, H - H % fs, W - W % fs
        if F_ == 0:
            what = "the clip length" if hasattr(ae, "reconstruct_chunked") else "f_t"
            raise CLIError(f"{a.input}: fewer than {what}={ft} frames")
        if H == 0 or W == 0:
            raise CLIError(f"{a.input}: {x.shape[2]}x{x.shape[3]} pixels is smaller than the "
                           f"autoencoder's spatial factor f_s={fs} (see --size)")
        x = x[:, :F_, :H, :W][None]
        ref = to_uint8(x[0])
        t0 = time.perf_counter()
        with torch.no_grad():
            try:
                z = ae.encode_chunked(x, chunk=a.chunk)
                # a decoder that needs more than the latent (LaMD's: each window's first frame)
                parts = (ae.reconstruct_chunked(x, chunk=a.chunk, z=z)
                         if hasattr(ae, "reconstruct_chunked")
                         else ae.decode_chunked(z, chunk=a.chunk))
            except (MemoryError, RuntimeError) as e:
                if not is_out_of_memory(e):
                    raise
                raise MemoryError(f"out of memory encoding {F_} frames of {H}x{W}: use --size "
                                  "or --chunk to encode less at a time") from e
            outs = []
            with VideoWriter(a.out, a.fps) as w:
                for part in parts:
                    fr = to_uint8(part[0])
                    w.write(fr)
                    outs.append(fr)
        rec = np.concatenate(outs)
        report = {"input": str(a.input), "frames": int(F_), "size": [int(H), int(W)],
                  "latent_shape": list(z.shape[1:]), "psnr": psnr(ref, rec),
                  "ssim": ssim(ref, rec), "seconds": round(time.perf_counter() - t0, 2),
                  "out": str(a.out)}
        print(json.dumps(report))
        return 0
