"""Tora's trajectory conditioning, up to the flow images its trajectory autoencoder encodes
(Zhang et al. 2024, Sec. 3.2, "Trajectory Extractor"):

1. trajectories ``(K, F, 2)`` -> **displacement maps** ``(F, 2, H, W)``: frame 0 is all zeros;
   frame ``f >= 1`` holds each point's step ``p_f - p_{f-1}`` at the pixel of its previous
   position ``floor(p_{f-1})`` (a point outside the frame writes nothing);
2. **Gaussian spreading**: each map convolved with a Gaussian normalised to peak 1 (not sum 1,
   as Tora's code), so a lone point keeps its displacement at its centre;
3. **flow to RGB** with the Middlebury colour wheel (Baker et al. 2011): hue = direction,
   saturation = magnitude / ``max_flow``, clipped at 1. ``max_flow`` is a fixed number of pixels
   per frame, the same in training and inference (Tora's code divides by the largest flow of a
   chunk in training but of the clip in inference; one fixed scale also keeps speeds
   comparable between clips).

Trajectory files: Tora's text format (``x,y`` a line on a 256 x 256 canvas, one file a
trajectory) and JSON (``{"canvas": [W, H], "trajectories": [[[x, y], ...], ...]}``), resampled to
the clip's frames (:func:`resample_trajectory`) and scaled from the canvas to the frame.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

__all__ = ["displacement_maps", "dense_displacement_maps", "gaussian_kernel", "spread", "flow_to_rgb", "color_wheel",
           "trajectory_flow_images", "read_trajectories", "resample_trajectory",
           "scale_trajectory", "sample_tracks", "TORA_CANVAS"]

#: the canvas of Tora's text trajectory files
TORA_CANVAS = (256, 256)


def displacement_maps(trajectories: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sparse displacement maps ``(F, 2, H, W)`` (``dx, dy`` in pixels) of point trajectories
    ``(K, F, 2)`` in pixel coordinates ``(x, y)`` of an ``H x W`` frame (pixel centres at
    integers + 0.5: a point at ``(x, y)`` writes at column ``floor(x)``, row ``floor(y)``).
    Where points share a pixel the last one wins."""
    tr = np.asarray(trajectories, np.float32)
    if tr.ndim != 3 or tr.shape[2] != 2:
        raise ValueError(f"trajectories must be (K, F, 2), got {tr.shape}")
    K, F, _ = tr.shape
    out = np.zeros((F, 2, height, width), np.float32)
    for f in range(1, F):
        prev, step = tr[:, f - 1], tr[:, f] - tr[:, f - 1]
        cols, rows = np.floor(prev[:, 0]).astype(int), np.floor(prev[:, 1]).astype(int)
        inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        out[f, 0, rows[inside], cols[inside]] = step[inside, 0]
        out[f, 1, rows[inside], cols[inside]] = step[inside, 1]
    return out


def dense_displacement_maps(flow: np.ndarray) -> np.ndarray:
    """The dense counterpart of :func:`displacement_maps`: forward flow ``(..., F, 2, H, W)``
    (frame f to f+1, as Moving Shapes and optical flow give it) shifted one frame on, so frame
    0 is zeros and frame ``f`` holds the step into frame ``f`` at the pixels of frame ``f - 1``:
    a tracked point's sparse map is this map at that point."""
    out = np.zeros_like(flow, dtype=np.float32)
    out[..., 1:, :, :, :] = flow[..., :-1, :, :, :]
    return out


def gaussian_kernel(sigma: float, radius: int | None = None) -> np.ndarray:
    """A 2D Gaussian ``(2r+1, 2r+1)`` with peak 1 (``r`` defaults to ``ceil(3 sigma)``)."""
    r = int(math.ceil(3 * sigma)) if radius is None else radius
    x = np.arange(-r, r + 1, dtype=np.float32)
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return np.outer(g, g)


def spread(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Convolve every channel of ``(..., H, W)`` maps with :func:`gaussian_kernel` (zero
    padding, same size): a point's displacement fills its neighbourhood, exact at its centre.
    The kernel is separable, so this is a row then a column pass (float64)."""
    import torch
    import torch.nn.functional as F

    r = int(math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))  # gaussian_kernel = outer(g, g)
    flat = torch.from_numpy(np.ascontiguousarray(maps, np.float32)).reshape(
        -1, 1, *maps.shape[-2:]).double()
    out = F.conv2d(flat, g.view(1, 1, 1, -1), padding=(0, r))  # symmetric: = convolution
    out = F.conv2d(out, g.view(1, 1, -1, 1), padding=(r, 0))
    return out.reshape(maps.shape).float().numpy()


def color_wheel() -> np.ndarray:
    """The Middlebury flow colour wheel: ``(55, 3)`` RGB in ``[0, 255]``, red at angle 0, through
    yellow, green, cyan, blue and magenta (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6)."""
    segments = [(15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)),
                (4, (0, 255, 0), (0, 255, 255)), (11, (0, 255, 255), (0, 0, 255)),
                (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0))]
    cols = []
    for n, a, b in segments:
        t = np.arange(n, dtype=np.float64)[:, None] / n
        cols.append(np.array(a) * (1 - t) + np.array(b) * t)
    return np.floor(np.concatenate(cols))


def flow_to_rgb(flow: np.ndarray, max_flow: float) -> np.ndarray:
    """Flow ``(..., 2, H, W)`` (pixels) -> uint8 RGB ``(..., H, W, 3)`` on the Middlebury wheel:
    the angle of ``(dx, dy)`` picks the hue (interpolated between wheel colours; y down, so
    ``atan2(-dy, -dx)`` as the reference code), ``|flow| / max_flow`` (clipped at 1) the
    saturation; zero flow is white."""
    if max_flow <= 0:
        raise ValueError(f"max_flow must be > 0, got {max_flow}")
    u, v = flow[..., 0, :, :], flow[..., 1, :, :]
    rad = np.minimum(np.sqrt(u ** 2 + v ** 2) / max_flow, 1.0)
    wheel = color_wheel()
    n = len(wheel)
    a = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    fk = (a + 1) / 2 * (n - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % n
    w = (fk - k0)[..., None]
    col = ((1 - w) * wheel[k0] + w * wheel[k1]) / 255.0
    col = 1 - rad[..., None] * (1 - col)
    return np.floor(255 * col + 1e-6).astype(np.uint8)


def trajectory_flow_images(trajectories: np.ndarray, height: int, width: int, sigma: float,
                           max_flow: float) -> np.ndarray:
    """Steps 1-3 in one call: uint8 ``(F, H, W, 3)`` flow images of ``(K, F, 2)`` trajectories,
    what the trajectory autoencoder encodes, in training and in inference alike."""
    return flow_to_rgb(spread(displacement_maps(trajectories, height, width), sigma), max_flow)


def resample_trajectory(points: np.ndarray, num_frames: int) -> np.ndarray:
    """A path of ``N`` points ``(N, 2)`` as ``num_frames`` points: linear interpolation along the
    path's index when ``N < num_frames``, evenly spaced subsampling (first and last kept) when
    ``N > num_frames``, unchanged when equal.

    Raises:
        ValueError: fewer than 2 points, or ``num_frames < 2``.
    """
    p = np.asarray(points, np.float32)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 2:
        raise ValueError(f"a trajectory needs at least 2 points (x, y), got shape {p.shape}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2, got {num_frames}")
    N = len(p)
    if N == num_frames:
        return p.copy()
    if N > num_frames:
        idx = np.round(np.linspace(0, N - 1, num_frames)).astype(int)
        return p[idx]
    s = np.linspace(0, N - 1, num_frames)
    return np.stack([np.interp(s, np.arange(N), p[:, c]) for c in range(2)], 1).astype(
        np.float32)


def scale_trajectory(points: np.ndarray, canvas: tuple[int, int], size: tuple[int, int]
                     ) -> np.ndarray:
    """Points ``(N, 2)`` on a ``canvas`` ``(W, H)`` scaled to a frame of ``size`` ``(W, H)``."""
    sx, sy = size[0] / canvas[0], size[1] / canvas[1]
    return np.asarray(points, np.float32) * np.array([sx, sy], np.float32)


def _check_inside(points: np.ndarray, canvas: tuple[int, int], name: str) -> None:
    W, H = canvas
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= W and 0 <= y <= H):
            raise ValueError(f"trajectory {name}: point {i + 1} ({x:g}, {y:g}) is outside the "
                             f"{W}x{H} canvas")


def read_trajectories(path: str | Path) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The trajectories of a file and their canvas ``(W, H)``: a ``.json`` file holds
    ``{"canvas": [W, H], "trajectories": [[[x, y], ...], ...]}``; any other file is Tora's text
    format, one ``x,y`` a line on the 256 x 256 canvas.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable contents, fewer than 2 points, or a point outside the canvas
            (one line naming the trajectory and the point).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such trajectory file")
    text = p.read_text(encoding="utf-8-sig")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
            canvas = tuple(int(v) for v in data["canvas"])
            trajs = [np.asarray(t, np.float64).reshape(-1, 2) for t in data["trajectories"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a trajectory JSON ({{\"canvas\": [W, H], "
                             f"\"trajectories\": [[[x, y], ...], ...]}}): {e}") from e
        names = [f"{p.name}#{i + 1}" for i in range(len(trajs))]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                x, y = (float(v) for v in line.replace(" ", "").split(","))
            except ValueError:
                raise ValueError(f"{p}: line {n} is not 'x,y': {line.strip()!r}") from None
            rows.append((x, y))
        canvas, trajs, names = TORA_CANVAS, [np.asarray(rows, np.float64).reshape(-1, 2)], [p.name]
    if len(canvas) != 2 or min(canvas) < 1 or not trajs:
        raise ValueError(f"{p}: needs a canvas [W, H] of positive sizes and at least one "
                         "trajectory")
    for t, name in zip(trajs, names):
        if len(t) < 2:
            raise ValueError(f"trajectory {name}: needs at least 2 points, got {len(t)}")
        _check_inside(t, canvas, name)
    return [t.astype(np.float32) for t in trajs], canvas


def sample_tracks(flow: np.ndarray, max_points: int, stride: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Tora's stage-2 trajectories from a clip's dense forward flow ``(F, 2, H, W)`` (frame f
    to f+1): ``1..max_points`` points drawn without replacement from a ``stride``-spaced grid
    of the first frame with probability proportional to their flow magnitude (points whose flow
    is zero are never drawn; on estimated flow, still ones rarely), each tracked by chaining the flow at its pixel,
    ``p_{f+1} = p_f + flow_f(p_f)``. Returns ``(K, F, 2)`` pixel ``(x, y)`` (``K = 0`` when
    nothing moves)."""
    F_, _, H, W = flow.shape
    ys, xs = np.mgrid[stride // 2:H:stride, stride // 2:W:stride]
    mag = np.hypot(flow[0, 0, ys, xs], flow[0, 1, ys, xs]).ravel()
    moving = np.flatnonzero(mag > 1e-6)
    if not len(moving):
        return np.zeros((0, F_, 2), np.float32)
    k = int(rng.integers(1, min(max_points, len(moving)) + 1))
    pick = rng.choice(moving, size=k, replace=False, p=mag[moving] / mag[moving].sum())
    pts = np.stack([xs.ravel()[pick], ys.ravel()[pick]], 1).astype(np.float32) + 0.5
    tracks = [pts.copy()]
    for f in range(F_ - 1):
        c = np.clip(np.floor(pts[:, 0]).astype(int), 0, W - 1)
        r = np.clip(np.floor(pts[:, 1]).astype(int), 0, H - 1)
        pts = pts + flow[f][:, r, c].T
        tracks.append(pts.copy())
    return np.stack(tracks, 1)
