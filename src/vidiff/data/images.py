"""Image datasets: a folder of images or a CSV list with captions, one frame an item (text-to-
image training, Make-A-Video's first stage; the images of joint image-video training)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ..registry import DATASETS
from .datasets import frames_to_tensor, read_video_list, resize_crop
from .video_io import VideoReadError

__all__ = ["ImageFolderDataset", "IMAGE_SUFFIXES", "load_image"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageFolderDataset(Dataset):
    """Images from a folder (recursively) or a CSV list (``path`` and optional ``caption``
    columns, as :func:`read_video_list` reads them), resized and centre-cropped: ``"video"`` is
    ``(3, H, W)`` in ``[-1, 1]``, with ``"caption"`` from the CSV (text-to-image training,
    Make-A-Video's first stage; joint image-video training)."""

    def __init__(self, path: str | Path, size: int = 64, on_error: str = "error"):
        from PIL import Image  # noqa: F401  (core dependency, imported lazily)

        p = Path(path)
        self.captions: list[str] | None = None
        if p.is_file() and p.suffix.lower() in (".csv", ".tsv"):
            rows = read_video_list(p)  # (line, path cell, caption or None, ...)
            self.files = [Path(r[1]) if Path(r[1]).is_absolute() else p.parent / r[1]
                          for r in rows]
            if any(r[2] is not None for r in rows):
                self.captions = [r[2] or "" for r in rows]
        elif p.is_dir():
            self.files = [f for f in sorted(p.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise FileNotFoundError(f"{p}: not a folder of images or a .csv list")
        if not self.files:
            raise FileNotFoundError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.size, self.on_error, self.skipped = size, on_error, []

    def __len__(self) -> int:
        return len(self.files)

    @property
    def clip_shape(self) -> tuple[int, int]:
        """``(1, size)``: an item is one frame."""
        return 1, self.size

    def __getitem__(self, i: int) -> dict:
        from PIL import Image, UnidentifiedImageError

        for k in range(len(self.files)):
            j = (i + k) % len(self.files)
            f = self.files[j]
            try:
                with Image.open(f) as im:
                    a = np.asarray(im.convert("RGB"))
                x = resize_crop(frames_to_tensor(a[None]), self.size)[:, 0]
                item = {"video": x}
                if self.captions is not None:
                    item["caption"] = self.captions[j]
                return item
            except (UnidentifiedImageError, OSError) as e:
                if self.on_error == "error":
                    raise VideoReadError(f"{f}: cannot read image ({e})") from e
                self.skipped.append((str(f), str(e)))
                log.warning("skipping unreadable image: %s", f)
        raise VideoReadError("no readable image left in the dataset")


def load_image(path: str | Path, size: int) -> tuple[Tensor, tuple[int, int]]:
    """Read an image file (PNG, JPEG, ...) as ``(3, size, size)`` in ``[-1, 1]``: resized so its
    shorter side is ``size`` and centre-cropped; also returns its original ``(H, W)``.

    Raises:
        FileNotFoundError: no such file.
        VideoReadError: the file is not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such image file")
    try:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise VideoReadError(f"{p}: not an image (PNG, JPEG, ...): {e}") from e
    return resize_crop(frames_to_tensor(a[None]), size)[:, 0], a.shape[:2]


@DATASETS.register("image_folder")
def image_folder_dataset(d, seed: int) -> ImageFolderDataset:
    """``data.kind: image_folder``: the images at ``data.path`` (a folder, or a CSV with
    ``path`` and ``caption`` columns) at ``data.size``: text-to-image training."""
    del seed  # every image, in the trainer's shuffled order
    if not d.path:
        raise ValueError("data.path is required for image_folder (a folder or CSV of images)")
    return ImageFolderDataset(d.path, d.size, d.on_error)
