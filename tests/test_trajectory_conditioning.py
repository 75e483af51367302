"""Tora's trajectory conditioning on hand-made trajectories: displacement maps, Gaussian
spreading (peak 1), the Middlebury flow colours with one fixed normalisation, resampling to the
clip's frames, canvas scaling and trajectory files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidiff.conditioning.trajectory import (color_wheel, displacement_maps, flow_to_rgb,
                                            gaussian_kernel, read_trajectories,
                                            resample_trajectory, scale_trajectory, spread,
                                            trajectory_flow_images)


def test_displacement_maps_hold_each_step_at_the_previous_position():
    tr = np.array([[[2.5, 3.5], [4.5, 3.5], [4.5, 6.5]],
                   [[7.9, 0.2], [9.0, 0.2], [9.5, 1.0]]])  # the second leaves an 8x8 frame
    m = displacement_maps(tr, 8, 8)
    assert m.shape == (3, 2, 8, 8)
    want = np.zeros_like(m)
    want[1, :, 3, 2] = (2.0, 0.0)   # first object: step 1 written where it was at frame 0
    want[2, :, 3, 4] = (0.0, 3.0)
    want[1, :, 0, 7] = (1.1, 0.0)   # second: inside at frame 0, outside after (writes nothing)
    assert np.allclose(m, want)
    assert not m[0].any()           # frame 0 is all zeros


def test_spreading_keeps_the_centre_and_follows_the_gaussian():
    k = gaussian_kernel(2.0)
    assert k.max() == 1.0 and k[6, 6] == 1.0 and k.shape == (13, 13)
    m = np.zeros((1, 2, 21, 21), np.float32)
    m[0, :, 10, 10] = (3.0, -1.0)
    s = spread(m, 2.0)
    assert np.allclose(s[0, :, 10, 10], (3.0, -1.0), atol=1e-6)   # peak 1: exact at the point
    assert np.isclose(s[0, 0, 10, 13], 3.0 * np.exp(-9 / 8), atol=1e-6)
    assert np.isclose(s[0, 0, 12, 12], 3.0 * np.exp(-8 / 8), atol=1e-6)
    assert np.isclose(s[0, 0].sum(), 3.0 * k.sum(), rtol=1e-5)


def test_flow_colours_on_the_middlebury_wheel():
    wheel = color_wheel()
    assert wheel.shape == (55, 3) and tuple(wheel[0]) == (255, 0, 0)
    f = np.zeros((2, 1, 4), np.float32)
    f[0, 0, 1] = 4.0       # right, at max_flow: red
    f[0, 0, 2] = -4.0      # left: wheel entry 27 (cyan to blue, 2/11 of the way)
    f[0, 0, 3] = 2.0       # right, half the max: half saturated
    rgb = flow_to_rgb(f, max_flow=4.0)
    assert rgb.shape == (1, 4, 3)
    assert tuple(rgb[0, 0]) == (255, 255, 255)          # no motion is white
    assert tuple(rgb[0, 1]) == (255, 0, 0)
    assert tuple(rgb[0, 2]) == (0, int(np.floor(255 - 255 * 2 / 11)), 255)
    assert tuple(rgb[0, 3]) == (255, 127, 127)
    assert tuple(flow_to_rgb(f * 10, max_flow=4.0)[0, 1]) == (255, 0, 0)  # clipped at 1


def test_one_normalisation_for_any_clip():
    # per-chunk or per-clip normalisation would colour the same step differently in a clip
    # that also holds a faster one; the fixed scale does not
    slow = np.array([[[10.0, 10.0], [12.0, 10.0], [14.0, 10.0]]])
    both = np.concatenate([slow, [[[30.0, 30.0], [38.0, 30.0], [46.0, 30.0]]]])
    a = trajectory_flow_images(slow, 64, 64, sigma=2.0, max_flow=8.0)
    b = trajectory_flow_images(both, 64, 64, sigma=2.0, max_flow=8.0)
    assert a.shape == (3, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a[:, :20, :20], b[:, :20, :20])


def test_resampling_and_canvas_scaling():
    up = resample_trajectory(np.array([[0, 0], [8, 4]]), 5)
    assert np.allclose(up, [[0, 0], [2, 1], [4, 2], [6, 3], [8, 4]])
    pts = np.stack([np.arange(9), np.arange(9) * 2], 1)
    assert np.allclose(resample_trajectory(pts, 5), pts[[0, 2, 4, 6, 8]])
    assert np.allclose(resample_trajectory(pts, 9), pts)
    assert np.allclose(scale_trajectory([[256, 128], [64, 32]], (256, 256), (64, 64)),
                       [[64, 32], [16, 8]])
    with pytest.raises(ValueError, match="at least 2 points"):
        resample_trajectory(np.array([[1, 2]]), 4)


def test_trajectory_files(tmp_path):
    txt = tmp_path / "path.txt"
    txt.write_text("10,20\n30, 40\n\n256,0\n")
    (t,), canvas = read_trajectories(txt)
    assert canvas == (256, 256) and np.allclose(t, [[10, 20], [30, 40], [256, 0]])
    js = tmp_path / "paths.json"
    js.write_text(json.dumps({"canvas": [64, 32], "trajectories": [[[1, 2], [3, 4]],
                                                                 [[5, 6], [7, 8], [9, 10]]]}))
    trajs, canvas = read_trajectories(js)
    assert canvas == (64, 32) and [len(t) for t in trajs] == [2, 3]
    js.write_text(json.dumps({"canvas": [64, 32], "trajectories": [[[1, 2], [3, 4]],
                                                                 [[5, 6], [70, 8]]]}))
    with pytest.raises(ValueError, match=r"^trajectory paths.json#2: point 2 \(70, 8\) is "
                                         r"outside the 64x32 canvas$"):
        read_trajectories(js)
    txt.write_text("10,20\n-1,5\n")
    with pytest.raises(ValueError, match=r"trajectory path.txt: point 2 \(-1, 5\) is outside"):
        read_trajectories(txt)
    txt.write_text("10;20\n")
    with pytest.raises(ValueError, match="line 1 is not 'x,y'"):
        read_trajectories(txt)
