"""Joint image-video training (VDM): ``k`` independent images appended to each clip as extra
frames, with ``frame_groups`` so temporal attention never mixes them with the clip or each other.

The images come from an image folder, or - without one - are single frames of other clips of
the same dataset. In a latent recipe the "frames" are latent frames: a cached clip lends one
latent frame, and an image from a folder is encoded on its own (``encode_image``), so the clip's
temporal compression never spans an image. Images of another size than the clips are resized
and centre-cropped to the clips' size.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .datasets import resize_crop

__all__ = ["JointImages", "mix_seed"]


def mix_seed(*xs: int) -> int:
    """Deterministic 63-bit mixing of integers (seeding per step / rank / item)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) + 0x632BE59BD9B4E019 + (h << 6) + (h >> 2))) & ((1 << 63) - 1)
    return h


class JointImages:
    """Append ``k`` images to every clip of a batch.

    Args:
        dataset: the clip dataset (items ``{"video": (C, F, H, W)}`` or ``{"latents": ...}``).
        k: images per clip.
        seed: the run's seed; image ``j`` of clip ``b`` is a pure function of
            ``(seed, n0 + b, j)``, so resumed runs see the same images.
        images: an image dataset (items ``{"video": (C, H, W)}`` in ``[-1, 1]``) or ``None``.
        encode_image: for a latent recipe with an image folder: pixels ``(C, H, W)`` -> one
            unscaled latent frame ``(c, h, w)``; ``image_size`` is then the pixel size it takes.
    """

    def __init__(self, dataset, k: int, seed: int, images=None,
                 encode_image: Callable[[Tensor], Tensor] | None = None,
                 image_size: int | None = None):
        self.dataset, self.k, self.seed, self.images = dataset, k, seed, images
        self.encode_image, self.image_size = encode_image, image_size

    def _other_frame(self, n: int, key: str) -> Tensor:
        N = len(self.dataset)
        clip = self.dataset[(n % (10 ** 8)) if N >= 10 ** 8 else n % N][key]
        return clip[:, n % clip.shape[1]]

    def _image(self, n: int, key: str, size: tuple[int, int]) -> Tensor:
        if self.images is None:
            return self._other_frame(n, key)
        img = self.images[n % len(self.images)]["video"]
        if key == "latents":
            if self.encode_image is None:
                raise ValueError("joint images from a folder in a latent recipe need the "
                                 "recipe's autoencoder to encode them")
            if self.image_size and img.shape[-1] != self.image_size:
                img = resize_crop(img[:, None], self.image_size)[:, 0]
            return self.encode_image(img)
        if tuple(img.shape[-2:]) != size:
            img = resize_crop(img[:, None], size[0])[:, 0]
        return img

    def append(self, batch: dict, n0: int) -> dict:
        """``batch`` with ``k`` image frames after each clip's frames and ``frame_groups``
        ``(B, F + k)``: 0 for the clip, ``1..k`` for its images."""
        key = "latents" if "latents" in batch else "video"
        x = batch[key]
        B, C, F_, H, W = x.shape
        imgs = [self._image(mix_seed(self.seed, n0 + b, j, 17), key, (H, W))
                for b in range(B) for j in range(self.k)]
        imgs = torch.stack(imgs).reshape(B, self.k, C, H, W).permute(0, 2, 1, 3, 4)
        batch[key] = torch.cat([x, imgs.to(x.dtype)], dim=2)
        groups = torch.zeros(B, F_ + self.k, dtype=torch.long)
        groups[:, F_:] = torch.arange(1, self.k + 1)
        batch["frame_groups"] = groups
        return batch
