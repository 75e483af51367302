"""Tora's motion condition: sparse tracks drawn from a clip's flow, flow images to motion latents
(trajectory autoencoder, average pooling, frame sampling), the same colouring in training and
sampling, and the trajectory autoencoder's data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidiff.conditioning.motion import MotionEncoder, TrajectoryConfig
from vidiff.conditioning.trajectory import sample_tracks, trajectory_flow_images
from vidiff.data import FlowImageDataset, MovingShapesConfig, MovingShapesDataset, generate_clip
from vidiff.models import VideoAutoencoder, VideoAutoencoderConfig

CFG = MovingShapesConfig(size=32, num_frames=8, min_objects=1, max_objects=2)


def test_sparse_tracks_follow_the_objects():
    clip = generate_clip(CFG, 3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        tr = sample_tracks(clip.flow, 3, 2, rng)
        assert 1 <= len(tr) <= 3 and tr.shape[1:] == (8, 2)
        for p in tr:  # a point on an object moves with that object's centroid
            steps = np.diff(p, axis=0)
            obj = np.diff(clip.trajectories, axis=1)  # (N, F - 1, 2)
            assert any(np.allclose(steps[0], o[0], atol=1e-4) for o in obj)
    still = np.zeros((4, 2, 16, 16), np.float32)
    assert sample_tracks(still, 3, 2, rng).shape == (0, 4, 2)


class _Model:
    sample_shape = (2, 8)  # latent frames, size (f_t 4, f_s 4: 8 frames of 32x32)


@pytest.mark.parametrize("compression", ["avg_pool", "sample", "vae"])
def test_flow_images_become_latents_on_the_grid(compression):
    ae = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2),
                                                 latent_channels=4)).eval() \
        if compression == "vae" else None
    enc = MotionEncoder(TrajectoryConfig(compression=compression, mode="sparse"), ae)
    tracks = np.array([[[4.0 + 2 * f, 16.0] for f in range(8)]], np.float32)  # (1, 8, 2)
    m, u = enc.for_sampling(_Model(), {"trajectories": tracks}, 3, device=torch.device("cpu"), generator=None,
                            guidance_scale=0.0, defaults=None)
    assert torch.equal(m, u) and m.shape == (3, 4 if ae else 3, 2, 8, 8)
    assert torch.equal(m[0], m[2])
    # training on the same tracks colours them the same way: the same latents
    images = enc.images([tracks], 8, (32, 32))
    assert np.array_equal(images[0], trajectory_flow_images(tracks, 32, 32, 2.0, 4.0))
    with pytest.raises(ValueError, match=r"must be \(K, F, 2\) pixel paths, one F"):
        enc.for_sampling(_Model(), {"trajectories": [tracks, tracks[:, :5]]}, 2,
                         device=torch.device("cpu"), generator=None, guidance_scale=0.0,
                         defaults=None)
    with pytest.raises(ValueError, match=r"must be \(K, F, 2\)"):  # one path: not a set
        enc.for_sampling(_Model(), {"trajectories": [tracks[0]]}, 1,
                         device=torch.device("cpu"), generator=None, guidance_scale=0.0,
                         defaults=None)
    with pytest.raises(ValueError, match="trajectory-controlled: pass trajectories"):
        enc.for_sampling(_Model(), None, 1, device=torch.device("cpu"), generator=None,
                         guidance_scale=0.0, defaults=None)


def test_training_condition_from_the_batch():
    ds = MovingShapesDataset(CFG, flow=True)
    batch = {"flow": torch.stack([ds[i]["flow"] for i in range(2)])}
    assert batch["flow"].shape == (2, 8, 2, 32, 32)
    g = torch.Generator().manual_seed(0)
    for mode in ("dense", "sparse"):
        enc = MotionEncoder(TrajectoryConfig(compression="avg_pool", mode=mode))
        m = enc.for_training(_Model(), batch, device=torch.device("cpu"), generator=g,
                             drop_prob=0.0)
        assert m.shape == (2, 3, 2, 8, 8) and bool((m.abs() > 0).any())
    with pytest.raises(ValueError, match="data.flow: true"):
        enc.for_training(_Model(), {"video": torch.zeros(1)}, device=torch.device("cpu"),
                         generator=g, drop_prob=0.0)
    with pytest.raises(ValueError, match="needs trajectory.autoencoder"):
        MotionEncoder(TrajectoryConfig(compression="vae"))


def test_trajectory_autoencoder_data():
    ds = FlowImageDataset(CFG, TrajectoryConfig(), sparse_prob=0.5)
    items = [ds[i]["video"] for i in range(6)]
    assert all(x.shape == (3, 8, 32, 32) for x in items)
    assert all(float(x.min()) >= -1 and float(x.max()) <= 1 for x in items)
    assert torch.equal(ds[2]["video"], items[2])
    assert not any(x[:, 0].ne(1).any() for x in items)  # frame 0: no motion, white


def test_dense_maps_agree_with_a_tracked_point():
    from vidiff.conditioning.trajectory import dense_displacement_maps, displacement_maps

    clip = generate_clip(MovingShapesConfig(size=32, num_frames=8, min_objects=1,
                                            max_objects=1), 4)
    tr = sample_tracks(clip.flow, 1, 2, np.random.default_rng(1))
    sparse, dense = displacement_maps(tr, 32, 32), dense_displacement_maps(clip.flow)
    hit = sparse.any(axis=1)  # (F, H, W): where the point wrote
    assert hit.sum() >= 1 and not dense[0].any()
    assert np.allclose(sparse.transpose(0, 2, 3, 1)[hit], dense.transpose(0, 2, 3, 1)[hit])


def test_a_latent_cache_carries_the_clips_flow(tmp_path):
    """`vidiff encode-latents --recipe R` takes R's Moving Shapes settings and data.flow; the
    cache's windows carry the flow of their own pixel frames (none between key frames)."""
    import argparse

    from vidiff.cli.encode_latents import _clips, _videos_keeping
    from vidiff.data.datasets import collate
    from vidiff.data.latents import LatentDataset, encode_to_cache

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  flow: true\n  moving_shapes: {size: 16, num_frames: 8, "
                      "motion: smooth}\n")
    a = argparse.Namespace(recipe=None, frames=None, size=None, min_objects=None,
                           max_objects=None, flow=None, videos=None)
    assert (_clips(a)[0].num_frames, _clips(a)[0].max_objects) == (64, 2)
    a = argparse.Namespace(recipe=str(recipe), frames=None, size=None, min_objects=None,
                           max_objects=1, flow=None, videos=None)
    cfg, flow, _ = _clips(a)
    assert (cfg.motion, cfg.size, cfg.num_frames, cfg.max_objects, flow) == \
        ("smooth", 16, 8, 1, True)
    a.frames, a.flow = 4, False
    assert _clips(a)[0].num_frames == 4 and _clips(a)[1] is False

    ds = MovingShapesDataset(cfg, flow=True)
    ae = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2),
                                                 spatial_factor=2, temporal_factor=2,
                                                 latent_channels=4))
    kept = {"flow": []}
    out = encode_to_cache(ae, _videos_keeping((ds[i] for i in range(2)), kept),
                          tmp_path / "z.safetensors", {}, progress=False, flow=kept["flow"])
    lat = LatentDataset(out, num_frames=4, flow=True)  # 2 latent frames: offsets 0..2
    assert lat.positions == 3
    item = lat[lat.positions + 2]  # clip 1, latent offset 2 -> pixel frames 4..7
    ref = ds[1]["flow"][4:8]
    assert item["flow"].shape == (4, 2, 16, 16)
    torch.testing.assert_close(item["flow"], ref.half().float())
    assert collate([lat[0], item])["flow"].shape == (2, 4, 2, 16, 16)
    assert "flow" not in LatentDataset(out, num_frames=4)[0]
    with pytest.raises(ValueError, match="data.flow needs data.frame_stride 1, got 2"):
        LatentDataset(out, num_frames=4, frame_stride=2, flow=True)
    bare = encode_to_cache(ae, (ds[i]["video"] for i in range(1)), tmp_path / "b.safetensors",
                           {}, progress=False)
    with pytest.raises(ValueError, match="data.flow is set but this latent cache has no flow"):
        LatentDataset(bare, num_frames=4, flow=True)


def test_real_videos_get_dense_flow_from_opencv(tmp_path):
    """data.flow on a video dataset: OpenCV DIS flow at the clip's size, close to the exact flow
    of a Moving Shapes clip on its object (mean within 15%), the last frame zeros."""
    pytest.importorskip("cv2")
    from vidiff.data.datasets import VideoFolderDataset, frames_to_tensor
    from vidiff.data.optical_flow import clip_flow
    from vidiff.data.video_io import write_video

    clip = generate_clip(MovingShapesConfig(size=64, num_frames=8, max_objects=1), 3)
    flow = clip_flow(frames_to_tensor(clip.video)).numpy()
    assert flow.shape == (8, 2, 64, 64) and not flow[-1].any()
    on = np.abs(clip.flow[:-1]).sum(1) > 0  # (F-1, H, W): the object's pixels
    exact = clip.flow[:-1].transpose(0, 2, 3, 1)[on].mean(0)
    est = flow[:-1].transpose(0, 2, 3, 1)[on].mean(0)
    assert np.allclose(est, exact, rtol=0.15, atol=0.1), (est, exact)

    write_video(tmp_path / "a.mp4", clip.video, lossless=True)
    item = VideoFolderDataset(tmp_path, num_frames=8, size=64, flow=True)[0]
    assert item["flow"].shape == (8, 2, 64, 64)
    torch.testing.assert_close(item["flow"], clip_flow(item["video"]))
