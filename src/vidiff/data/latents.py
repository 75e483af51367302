"""Cached autoencoder latents: encode a video set once, then train latent diffusion on windows
of the cache without running the encoder every step (for the tiny LVDM recipe the encoder costs
more than the denoiser).

A cache is one safetensors file: ``latents`` ``(N, c, L, h, w)`` (unscaled posterior means;
training multiplies by the autoencoder's ``scale_factor``), optional ``labels`` ``(N,)`` and
``fps`` ``(N,)`` (each clip's real frame rate), optional ``flow`` ``(N, F, 2, H, W)``
(float16, pixels: each clip's dense forward flow, for trajectory training), with JSON metadata (the pixel frames and size,
``f_t``/``f_s``, the autoencoder it came from, the Moving Shapes config when that was the
source, and the clips' ``captions`` when they have them).

A :class:`LatentDataset` yields windows of ``num_frames`` *pixel* frames' worth of latents
(``num_frames / f_t`` latent frames) every ``frame_stride`` latent frames, at every offset of
every cached clip: ``frame_stride > 1`` gives sparse key frames, what the key-frame model of
hierarchical long-video generation learns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..models.modeling import atomic_write
from ..registry import DATASETS

__all__ = ["LatentDataset", "encode_to_cache", "read_cache_metadata", "cache_source"]


def read_cache_metadata(path: str | Path) -> dict:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get("vidiff", "{}"))


def cache_source(data) -> dict:
    """What a latent model's cache was encoded from: ``data.cache_source`` when the checkpoint
    carries it, else the metadata of the cache file at ``data.path``."""
    if data.cache_source:
        return data.cache_source
    if not data.path or not Path(data.path).is_file():
        raise FileNotFoundError(f"{data.path}: the latent cache this model was trained on is "
                                "not here, and the checkpoint does not record its source")
    return read_cache_metadata(data.path)


@torch.no_grad()
def encode_to_cache(autoencoder, clips: Iterable[Tensor], out: str | Path, meta: dict,
                    labels: list[int] | None = None, batch_size: int = 8,
                    progress: bool = True, total: int | None = None,
                    fps: list[float] | None = None, captions: list[str] | None = None,
                    flow: list[Tensor] | None = None) -> Path:
    """Encode ``clips`` (each ``(C, F, H, W)`` in ``[-1, 1]``; any iterable, consumed as a
    stream) to posterior-mean latents and write the cache ``out`` atomically. ``meta`` is
    stored with the file (plus shapes); ``labels``, ``fps``, ``captions`` and ``flow`` (one per
    clip; flow ``(F, 2, H, W)`` in pixels) may be filled while ``clips`` is consumed."""
    from tqdm.auto import tqdm

    ae = autoencoder.eval()
    dev = next(ae.parameters()).device
    zs: list[Tensor] = []
    buf: list[Tensor] = []

    def flush():
        if buf:
            x = torch.stack(buf).to(dev)
            zs.append(ae.encode_chunked(x).to(torch.float16).cpu())
            buf.clear()
    for x in tqdm(clips, desc="encoding", disable=not progress, unit="clip", total=total):
        buf.append(x)
        if len(buf) == batch_size:
            flush()
    flush()
    if not zs:
        raise ValueError("no clips to encode")
    z = torch.cat(zs)
    if not bool(torch.isfinite(z).all()):
        bad = sorted({int(i) for i in (~torch.isfinite(z)).flatten(1).any(1).nonzero()[:, 0]})
        raise ValueError(f"encoding produced NaN/inf latents for clip(s) {bad[:5]}: the "
                         "autoencoder or the clips are damaged; nothing was written")
    ft, fs = ae.factors
    meta = {**meta, "num_clips": z.shape[0], "latent_shape": list(z.shape[1:]),
            "temporal_factor": ft, "spatial_factor": fs,
            "frames": z.shape[2] * ft, "size": z.shape[3] * fs}
    tensors = {"latents": z.contiguous()}
    if labels is not None:
        tensors["labels"] = torch.as_tensor(labels, dtype=torch.long)
    if fps and all(f is not None for f in fps):
        tensors["fps"] = torch.as_tensor(fps, dtype=torch.float32)
    if captions and any(captions):
        meta["captions"] = list(captions)
    if flow:
        tensors["flow"] = torch.stack(flow).to(torch.float16).contiguous()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda p: save_file(tensors, str(p), metadata={"vidiff": json.dumps(meta)}))
    return out


class LatentDataset(torch.utils.data.Dataset):
    """Windows of a latent cache: item ``i`` is ``{"latents": (c, n, h, w)}`` (float32,
    unscaled) with ``n = num_frames / f_t`` latent frames ``frame_stride`` apart, plus the
    clip's ``label``, ``caption`` and ``fps`` (its rate divided by ``frame_stride``) where the
    cache has them, and with ``flow`` the window's ``flow`` ``(F, 2, H, W)`` (float32, pixels;
    read from the file item by item, so a large cache's flow never sits in memory).

    Raises:
        FileNotFoundError: no cache at ``path``.
        ValueError: windows that do not fit the cached clips; ``flow`` with a cache that has
            none, or with ``frame_stride > 1`` (flow between key frames is not the clips').
    """

    def __init__(self, path: str | Path, num_frames: int, frame_stride: int = 1,
                 size: int | None = None, flow: bool = False):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no latent cache (make one with `vidiff "
                                    "encode-latents`)")
        self.meta = read_cache_metadata(path)
        with safe_open(str(path), "pt") as f:
            self.latents = f.get_tensor("latents")
            self.labels = f.get_tensor("labels") if "labels" in f.keys() else None
            self.fps = f.get_tensor("fps") if "fps" in f.keys() else None
            if flow and "flow" not in f.keys():
                raise ValueError(f"{path}: data.flow is set but this latent cache has no flow "
                                 "(encode it with `vidiff encode-latents --flow`)")
        if flow and frame_stride > 1:
            raise ValueError(f"data.flow needs data.frame_stride 1, got {frame_stride} (flow "
                             "between key frames is not the clips')")
        self.path, self.flow = path, flow
        self.captions = self.meta.get("captions")
        ft = int(self.meta.get("temporal_factor", 1))
        if num_frames % ft:
            raise ValueError(f"data.num_frames ({num_frames}) must be a multiple of the cache's "
                             f"f_t={ft}")
        if size is not None and self.meta.get("size") not in (None, size):
            raise ValueError(f"data.size is {size} but the cache holds {self.meta['size']}px "
                             "clips")
        self.window, self.stride, self.ft = num_frames // ft, frame_stride, ft
        L = self.latents.shape[2]
        span = (self.window - 1) * frame_stride + 1
        if span > L:
            raise ValueError(f"a window of {self.window} latent frames {frame_stride} apart spans "
                             f"{span}, but cached clips have {L} latent frames")
        self.positions = L - span + 1

    @property
    def clip_shape(self) -> tuple[int, int]:
        """``(frames, size)`` in pixels of the clip an item's latents decode to."""
        return self.window * int(self.meta.get("temporal_factor", 1)), int(self.meta["size"])

    def __len__(self) -> int:
        return self.latents.shape[0] * self.positions

    def __getitem__(self, i: int) -> dict:
        n, o = divmod(int(i), self.positions)
        z = self.latents[n, :, o:o + (self.window - 1) * self.stride + 1:self.stride]
        item = {"latents": z.float()}
        if self.labels is not None:
            item["label"] = int(self.labels[n])
        if self.fps is not None:
            item["fps"] = float(self.fps[n]) / self.stride
        if self.captions is not None:
            item["caption"] = self.captions[n]
        if self.flow:
            with safe_open(str(self.path), "pt") as f:
                flow = f.get_slice("flow")[n:n + 1, o * self.ft:(o + self.window) * self.ft]
            item["flow"] = flow[0].float()
        return item


@DATASETS.register("latents")
def latent_dataset(d, seed: int) -> LatentDataset:
    """``data.kind: latents``: windows of the cache at ``data.path`` (``vidiff encode-latents``);
    ``num_frames`` / ``size`` are then pixel frames / size, ``frame_stride`` counts latent
    frames."""
    del seed  # every window of every clip, in the trainer's shuffled order
    if not d.path:
        raise ValueError("data.path is required for data.kind latents (a latent cache file)")
    ds = LatentDataset(d.path, d.num_frames, d.frame_stride, d.size, flow=d.flow)
    # what the cache came from: checkpoints know it without the file (not its captions)
    d.cache_source = {k: v for k, v in ds.meta.items() if k != "captions"}
    return ds
