"""Videos far longer than the training clip (LVDM), generated window by window in the
denoiser's space (latents for a latent pipeline, pixels otherwise) and streamed to a file.

* :func:`autoregressive` - each new window is conditioned on the last ``context`` frames of the
  previous one (prefix mask), optionally with conditional latent perturbation (``cond_t = s``)
  and unconditional guidance (``uncond_weight = w``).
* :func:`hierarchical` - sparse key frames first (autoregressively, by a model of the key frame
  rate), then the frames in between filled window by window with interpolation masks.
* :func:`generate_long` - either mode, decoded chunk by chunk and written to a video file as it
  goes, so memory does not grow with length (the model-space frames kept are tiny).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..data.formats import FPS_RANGE
from ..data.video_io import VideoWriter, to_uint8
from ..diffusion.masks import mode_mask
from ..ranges import check_range
from ..registry import PIPELINES
from .video import VideoDiffusionPipeline

__all__ = ["autoregressive", "hierarchical", "generate_long", "long_video_paths",
           "StreamingDecoder", "VideoExtensionPipeline", "LongVideoPipeline"]

log = logging.getLogger(__name__)


def _window(pipe, n: int, window: int, given: Tensor | None, mask: Tensor | None,
            cond_t: float | None, uncond_weight: float, kw: dict) -> Tensor:
    """One window of model-space frames ``(n, C, window, h, w)``."""
    kw = {"progress": False, **kw}
    # the video pipeline's own call, whatever __call__ a subclass (extension, long) has
    return VideoDiffusionPipeline.__call__(
        pipe, num_videos=n, num_frames=window * pipe.frames_per_step, given_frames=given,
        given_mask=mask, cond_t=cond_t, uncond_weight=uncond_weight if given is not None else 0.0,
        output_type="latent", **kw)


def _defaults(pipe, cond_t, kw: dict) -> tuple[float | None, dict]:
    """``cond_t="auto"`` and the conditioning method from how the model was trained."""
    d = pipe.conditioning_defaults()
    kw = {"conditioning_method": d["conditioning_method"], **kw}
    return (d["cond_t"] if cond_t == "auto" else cond_t), kw


def autoregressive(pipe, num_new: int, window: int, context: int, first: Tensor | None = None,
                   num_videos: int = 1, cond_t: float | None | str = "auto",
                   uncond_weight: float = 0.0, **kw: Any) -> Iterator[Tensor]:
    """Yield ``num_new`` new model-space frames (in chunks) continuing ``first`` (or starting
    from an unconditional window). ``cond_t``: the given frames' noise level (LVDM's
    perturbation ``s``; ``None`` = VDM-style, noised to the current ``t``; ``"auto"``: 0 for a
    model trained with frame masks, else ``None`` with reconstruction guidance)."""
    if not 0 < context < window:
        raise ValueError(f"context ({context}) must be in 1..window-1 ({window - 1})")
    cond_t, kw = _defaults(pipe, cond_t, kw)
    prev = first
    made = 0
    if prev is None:
        prev = _window(pipe, num_videos, window, None, None, cond_t, 0.0, kw)
        take = prev[:, :, :num_new]
        made += take.shape[2]
        yield take
    while made < num_new:
        n = prev.shape[0]
        given = torch.zeros(n, prev.shape[1], window, *prev.shape[3:], device=prev.device)
        given[:, :, :context] = prev[:, :, -context:]
        mask = mode_mask("prefix", window, k=context, batch=n, device=prev.device)
        out = _window(pipe, n, window, given, mask, cond_t, uncond_weight, kw)
        new = out[:, :, context:][:, :, :num_new - made]
        made += new.shape[2]
        prev = out
        yield new


def hierarchical(pipe, num_frames: int, window: int, stride: int, key_pipe=None,
                 key_context: int | None = None, num_videos: int = 1,
                 cond_t: float | None | str = "auto", uncond_weight: float = 0.0,
                 **kw: Any) -> Iterator[Tensor]:
    """Yield ``num_frames`` model-space frames: key frames every ``stride`` frames generated
    autoregressively by ``key_pipe`` (a model of the key frame rate; default
    ``pipe.key_pipeline`` when the checkpoint bundles one, else ``pipe`` itself), then
    each stretch filled by ``pipe`` with a sparse mask (given at 0, stride, 2 stride, ...)."""
    if (window - 1) % stride:
        raise ValueError(f"window-1 ({window - 1}) must be a multiple of the key stride {stride}")
    if key_pipe is None:
        key_pipe = pipe.key_pipeline
    if key_pipe is None:
        log.warning("hierarchical: no key-frame model given; the same model generates key frames "
                    "at its own frame rate")
        key_pipe = pipe
    per = (window - 1) // stride  # keys per window after the first
    n_windows = max(1, -(-(num_frames - 1) // (window - 1)))
    n_keys = n_windows * per + 1
    kwin = key_pipe.sample_shape(1, None)[2]
    keys = list(autoregressive(key_pipe, n_keys, kwin,
                               kwin // 2 if key_context is None else key_context,
                               num_videos=num_videos, cond_t=cond_t,
                               uncond_weight=uncond_weight, **kw))
    keys = torch.cat(keys, dim=2)
    cond_t, kw = _defaults(pipe, cond_t, kw)
    made = 0
    positions = list(range(0, window, stride))
    for j in range(n_windows):
        k0 = j * per
        given = torch.zeros(num_videos, keys.shape[1], window, *keys.shape[3:], device=keys.device)
        given[:, :, positions] = keys[:, :, k0:k0 + per + 1]
        mask = mode_mask("sparse", window, stride=stride, batch=num_videos, device=keys.device)
        out = _window(pipe, num_videos, window, given, mask, cond_t, uncond_weight, kw)
        new = out if j == 0 else out[:, :, 1:]  # the first frame is the previous window's last
        new = new[:, :, :num_frames - made]
        made += new.shape[2]
        yield new


class StreamingDecoder:
    """Push model-space frames in chunks; get pixel frames ``uint8 (N, F, H, W, 3)`` back as soon
    as their decoder context is available (the autoencoder's temporal receptive field), so
    decoding a long video needs bounded memory and equals decoding it whole."""

    def __init__(self, pipe, chunk: int = 4):
        self.pipe, self.chunk = pipe, chunk
        ae = pipe.autoencoder
        self.ov = ae.temporal_receptive_field() if ae is not None else 0
        self.buf: Tensor | None = None  # model-space frames not yet decoded, plus left context
        self.left = 0  # how many of buf's first frames are left context only

    def _decode(self, z: Tensor, lo: int, hi: int) -> Tensor:
        ae = self.pipe.autoencoder
        if ae is None:
            x = z[:, :, lo:hi]
        else:
            ft = ae.factors[0]
            x = ae.decode(z / ae.scale_factor)[:, :, lo * ft:hi * ft]
        return to_uint8(x)

    @torch.no_grad()
    def push(self, z: Tensor) -> list:
        self.buf = z if self.buf is None else torch.cat([self.buf, z], dim=2)
        out = []
        while self.buf.shape[2] - self.left >= self.chunk + self.ov:
            lo, hi = self.left, self.left + self.chunk
            out.append(self._decode(self.buf[:, :, :hi + self.ov], lo, hi))
            keep = max(0, hi - self.ov)
            self.buf, self.left = self.buf[:, :, keep:], hi - keep
        return out

    @torch.no_grad()
    def flush(self) -> list:
        if self.buf is None or self.buf.shape[2] <= self.left:
            return []
        out = [self._decode(self.buf, self.left, self.buf.shape[2])]
        self.buf = None
        return out


def long_video_paths(out: str | Path, num_videos: int) -> list[Path]:
    """``out`` for one video; ``stem_0.ext``, ``stem_1.ext``, ... for several."""
    out = Path(out)
    if num_videos == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(num_videos)]


def generate_long(pipe, num_frames: int, out: str | Path, mode: str = "autoregressive",
                  context: int | None = None, stride: int | None = None, key_pipe=None,
                  fps: float = 8.0, cond_t: float | None | str = "auto",
                  uncond_weight: float = 0.0, num_videos: int = 1,
                  generator: torch.Generator | None = None, progress: bool = True,
                  **kw: Any) -> dict:
    """Generate ``num_videos`` videos of ``num_frames`` pixel frames, sampled as one batch, and
    stream them to ``out`` (several: ``stem_0.ext``, ``stem_1.ext``, ...).

    Returns ``{"frames": written per video, "path": out, "paths": [each video's file]}``.
    """
    for name, value, spec in (("num_videos", num_videos, ">= 1"),
                              ("num_frames", num_frames, ">= 1"), ("fps", fps, FPS_RANGE),
                              ("uncond_weight", uncond_weight, ">= 0")):
        check_range(name, value, spec)
    ft = pipe.frames_per_step
    window = pipe.sample_shape(1, None)[2]
    need = -(-num_frames // ft)
    kw["generator"] = generator
    if mode == "autoregressive":
        chunks = autoregressive(pipe, need, window, window // 2 if context is None else context,
                                cond_t=cond_t, num_videos=num_videos,
                                uncond_weight=uncond_weight, **kw)
    elif mode == "hierarchical":
        kp = key_pipe or pipe.key_pipeline
        kstride = kp.experiment.data.frame_stride if kp is not None else 1
        if stride is None:  # the key model's own rate
            stride = kstride if kstride > 1 else window - 1
        if stride < 1:
            raise ValueError(f"the key-frame stride must be >= 1, got {stride}")
        chunks = hierarchical(pipe, need, window, stride, key_pipe=key_pipe,
                              key_context=context, num_videos=num_videos, cond_t=cond_t,
                              uncond_weight=uncond_weight, **kw)
    else:
        raise ValueError(f"unknown long-video mode {mode!r}; choose autoregressive or hierarchical")
    dec = StreamingDecoder(pipe)
    paths = long_video_paths(out, num_videos)
    written = 0
    bar = tqdm(total=num_frames, desc=f"long video ({mode})", disable=not progress, unit="frame")
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)  # closed before an error is printed, not after
        writers = [stack.enter_context(VideoWriter(p, fps)) for p in paths]

        def emit(frames_list):
            nonlocal written
            for fr in frames_list:  # (num_videos, f, H, W, 3)
                fr = fr[:, : num_frames - written]
                if fr.shape[1]:
                    for w, v in zip(writers, fr):
                        w.write(v)
                    written += fr.shape[1]
                    bar.update(fr.shape[1])
        for z in chunks:
            emit(dec.push(z))
        emit(dec.flush())
    return {"frames": written, "path": str(out), "paths": [str(p) for p in paths]}


@PIPELINES.register()
class VideoExtensionPipeline(VideoDiffusionPipeline):
    """Frame-conditioned extension of a given clip: ``pipe(video, total_frames)`` repeatedly
    generates the next window given the last ``context_frames`` model-space frames (latent
    frames for a latent pipeline), the way the model was trained to take given frames
    (:meth:`~VideoDiffusionPipeline.conditioning_defaults`).
    ``VideoExtensionPipeline.from_pipe(pipe)`` shares another pipeline's components."""

    def __call__(self, video: Tensor, total_frames: int, context_frames: int | None = None,
                 **kw: Any) -> np.ndarray:
        """``video``: pixels ``(N, C, F, H, W)`` in ``[-1, 1]``; returns uint8
        ``(N, total_frames, H, W, 3)`` whose first ``F`` frames are ``video``'s (for a latent
        pipeline, their reconstruction by the autoencoder)."""
        z = self.encode(video)
        window = self.sample_shape(1, None)[2]
        need = -(-total_frames // self.frames_per_step)
        chunks = [z] + list(autoregressive(
            self, need - z.shape[2], window=window,
            context=window // 2 if context_frames is None else context_frames, first=z, **kw))
        return self.to_uint8(torch.cat(chunks, dim=2))[:, :total_frames]


@PIPELINES.register()
class LongVideoPipeline(VideoDiffusionPipeline):
    """LVDM's long videos, streamed to a file: ``pipe(num_frames, out, mode=...)`` with
    ``mode="autoregressive"`` or ``"hierarchical"`` (key frames by the ``key`` component); see
    :func:`generate_long` for the arguments and the returned report."""

    def __call__(self, num_frames: int, out: str | Path, mode: str = "autoregressive",
                 **kw: Any) -> dict:
        return generate_long(self, num_frames, out, mode=mode, **kw)
