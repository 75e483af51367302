"""``vidiff motion-swap``: decode clip A's first frame with clip B's motion latent (LaMD's
decomposition made visible)."""

from __future__ import annotations

import argparse
import json

from .args import add_options, positive
from .base import CLIError, Command, load_autoencoder


class MotionSwap(Command):
    name = "motion-swap"
    help = "decode video A's first frame with video B's motion (an MCD-VAE)"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("content", metavar="A", help="the video whose first frame is kept")
        p.add_argument("motion", metavar="B", help="the video whose motion is used")
        p.add_argument("--checkpoint", default="lamd_tiny",
                       help="an MCD-VAE, or an image-to-video checkpoint holding one "
                            "(default: the shipped lamd_tiny)")
        p.add_argument("--size", type=positive("--size"),
                       help="resize (shorter side) and centre-crop both videos first "
                            "(default: as they are; sides must be divisible by f_s)")
        p.add_argument("--out", default="swapped.mp4",
                       help="the swapped clip (.mp4/.gif); <stem>_sheet.png shows A, B and it")
        add_options(p, "--fps", "--device")

    def run(self, a: argparse.Namespace) -> int:
        import torch
        from PIL import Image

        from ..data.datasets import frames_to_tensor, resize_crop
        from ..data.sample_outputs import contact_sheet
        from ..data.video_io import check_writable, read_video, to_uint8, write_video
        from ..devices import resolve_device

        check_writable(a.out)
        ae = load_autoencoder(a.checkpoint)
        if not hasattr(ae, "clip_conditions"):
            raise CLIError(f"{a.checkpoint} holds a {type(ae).__name__}; motion-swap needs a "
                           "motion-content decomposed autoencoder (MCDVAE)")
        ae = ae.to(resolve_device(a.device))
        L, fs = ae.factors
        clips = []
        for path in (a.content, a.motion):
            frames = read_video(path, num_frames=L)
            if len(frames) < L:
                raise CLIError(f"{path}: {len(frames)} frames; this MCD-VAE codes {L}")
            x = frames_to_tensor(frames)
            x = resize_crop(x, a.size) if a.size else x
            if x.shape[2] % fs or x.shape[3] % fs:
                raise CLIError(f"{path}: {x.shape[3]}x{x.shape[2]} is not divisible by "
                               f"f_s={fs} (use --size)")
            clips.append(x[None].to(next(ae.parameters()).device))
        if clips[0].shape[3:] != clips[1].shape[3:]:
            raise CLIError(f"A is {clips[0].shape[4]}x{clips[0].shape[3]} and B "
                           f"{clips[1].shape[4]}x{clips[1].shape[3]}: give --size")
        with torch.no_grad():
            z_b = ae.latents(clips[1], scaled=False)
            swapped = ae.decode(z_b, clips[0][:, :, 0]).float().clamp(-1, 1)
        out = to_uint8(swapped[0])
        write_video(a.out, out, a.fps)
        views = [to_uint8(clips[0][0]), to_uint8(clips[1][0]), out]
        sheet = str(a.out).rsplit(".", 1)[0] + "_sheet.png"
        Image.fromarray(contact_sheet(views, labels=["A", "B", "A + B's motion"])).save(sheet)
        print(json.dumps({"out": str(a.out), "contact_sheet": sheet,
                          "motion_latent": list(z_b.shape[1:]), "frames": L}))
        return 0
