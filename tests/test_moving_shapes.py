import numpy as np
import pytest

from vidiff.data import MovingShapesConfig, MovingShapesDataset, generate_clip
from vidiff.evaluation import detect_frame, evaluate_videos, motion_smoothness, trajectory_error
from vidiff.evaluation.detector import detect_video
from vidiff.data.captions import parse_objects
from vidiff.evaluation.metrics import caption_adherence, frame_failure, psnr, ssim

CFG = MovingShapesConfig(size=64, num_frames=16, max_objects=3)


def test_deterministic_from_seed():
    a, b, c = generate_clip(CFG, 5), generate_clip(CFG, 5), generate_clip(CFG, 6)
    assert np.array_equal(a.video, b.video) and a.caption == b.caption
    assert not np.array_equal(a.video, c.video)


def test_ground_truth_is_consistent():
    for seed in range(20):
        clip = generate_clip(CFG, seed)
        n = len(clip.colors)
        assert clip.video.shape == (16, 64, 64, 3) and clip.video.dtype == np.uint8
        assert clip.trajectories.shape == (n, 16, 2) and clip.masks.shape == (n, 16, 64, 64)
        assert clip.flow.shape == (16, 2, 64, 64)
        assert len(parse_objects(clip.caption)) == n
        assert len(set(clip.colors)) == n  # one colour per object
        # inside the canvas, speed 1-4 px/frame away from bounces
        assert (clip.trajectories >= 0).all() and (clip.trajectories <= 64).all()
        steps = np.linalg.norm(np.diff(clip.trajectories, axis=1), axis=-1)
        assert steps.max() <= 4.0 + 1e-4
        # flow on the object's pixels is its centroid displacement
        for i in range(n):
            m = clip.masks[i, 0]
            if m.any():
                d = clip.trajectories[i, 1] - clip.trajectories[i, 0]
                assert np.allclose(clip.flow[0, 0][m], d[0]) and np.allclose(clip.flow[0, 1][m], d[1])


def test_unoccluded_centroids_match_trajectories_and_detector_finds_objects():
    clip = generate_clip(MovingShapesConfig(size=64, num_frames=8, max_objects=1), 3)
    dets = detect_video(clip.video)
    for f, fr in enumerate(dets):
        assert len(fr) == 1
        d = fr[0]
        assert d.color == clip.colors[0] and d.shape == clip.shapes[0]
        assert np.linalg.norm(np.array(d.centroid) - clip.trajectories[0, f]) < 0.6
    assert trajectory_error(dets, clip.colors, clip.trajectories) < 0.6


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_shape_classes(shape):
    cfg = MovingShapesConfig(size=64, num_frames=2, max_objects=1, shapes=(shape,))
    ok = [detect_frame(generate_clip(cfg, s).video[0])[0].shape == shape for s in range(10)]
    assert sum(ok) >= 9


def test_metrics_on_real_clips_and_on_noise():
    cfg = MovingShapesConfig(size=32, num_frames=8, max_objects=2)
    clips = [generate_clip(cfg, s) for s in range(40)]
    m = evaluate_videos([c.video for c in clips], cfg, captions=[c.caption for c in clips])
    assert m.validity >= 0.97
    assert m.motion_smoothness < 0.8
    assert m.caption_adherence > 0.75
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(4)]
    assert evaluate_videos(noise, cfg).validity == 0.0
    black = [np.zeros((8, 32, 32, 3), np.uint8)]
    assert evaluate_videos(black, cfg).validity == 0.0


def test_invalid_frames_by_reason():
    """Each kind of invalid frame is counted under its reason: an empty frame is "missing",
    three objects "extra", sprinkled pixels "clutter", a frame-filling blob "oversized"."""
    cfg = MovingShapesConfig(size=32, num_frames=5, max_objects=2)
    v = np.zeros((5, 32, 32, 3), np.uint8)
    for x0 in (2, 12, 22):                       # frame 1: three squares
        v[1, 4:10, x0:x0 + 6] = (255, 0, 0) if x0 != 12 else (0, 255, 0)
    v[1, 4:10, 22:28] = (0, 0, 255)
    v[2, 4:10, 2:8] = (255, 0, 0)                # frame 2: one square, plus clutter
    for x0 in (0, 8, 16):                        # three 2x2 specks: each below the
        v[2, 24:26, x0:x0 + 2] = (0, 255, 0)     # smallest object, together above it
    v[3, 2:30, 2:30] = (255, 255, 255)           # frame 3: far too big
    v[4, 4:10, 2:8] = (255, 0, 0)                # frame 4: valid
    m = evaluate_videos([v], cfg)
    assert m.validity == 0.2
    assert m.invalid == {"missing": 0.2, "extra": 0.2, "clutter": 0.2, "oversized": 0.2}
    assert m.clip_failures == ["meco."]
    m2 = evaluate_videos([v, np.zeros_like(v), v[[4] * 5]], cfg)   # + an empty and a valid clip
    assert m2.clip_failures == ["meco.", "mmmmm", "....."]
    assert m2.invalid_clips == {"all_frames": 1, "some_frames": 1}
    assert frame_failure(detect_frame(v[4]), cfg) is None
    assert frame_failure(detect_frame(v[4]), cfg, expected=2) is None  # one may be occluded
    assert frame_failure(detect_frame(v[1]), cfg, expected=2) == "extra"
    assert frame_failure(detect_frame(v[0]), cfg, expected=1) == "missing"


def test_smoothness_sees_jitter_and_adherence_sees_wrong_direction():
    cfg = MovingShapesConfig(size=64, num_frames=16, max_objects=1, min_speed=2 / 64, max_speed=3 / 64)
    def early_bounce(c):
        v = np.diff(c.trajectories[0, :5], axis=0)
        return (np.sign(v[1:]) != np.sign(v[:-1])).any()
    clip = next(c for c in (generate_clip(cfg, s) for s in range(50)) if not early_bounce(c))
    dets = detect_video(clip.video)
    s0 = motion_smoothness(dets)
    shuffled = detect_video(clip.video[np.random.default_rng(0).permutation(16)])
    assert motion_smoothness(shuffled) > 3 * s0
    assert caption_adherence(dets, clip.caption) >= 0.5
    reverse = detect_video(clip.video[::-1].copy())
    assert caption_adherence(reverse, clip.caption) == 0.0


def test_psnr_ssim():
    a = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 20 < psnr(a, b) < 40 and ssim(a, b) < 1.0


def test_dataset_items():
    ds = MovingShapesDataset(MovingShapesConfig(size=32, num_frames=4), seed=1, label="first_color")
    it = ds[7]
    assert it["video"].shape == (3, 4, 32, 32) and it["video"].min() >= -1 and it["video"].max() <= 1
    assert 0 <= it["label"] < 7 and isinstance(it["caption"], str)
    assert ds.num_classes == 7


def test_default_clips_are_unchanged_and_the_textured_background_moves_with_the_pan():
    """The default (black) clips are bit-identical to those before ``background`` existed
    (hashes taken then); a textured background leaves the objects as they were, stays dim
    enough to be background for the detector, and moves by the pan."""
    import hashlib

    video = generate_clip(MovingShapesConfig(), 0).video
    assert hashlib.sha256(video.tobytes()).hexdigest() == (
        "059a3e7bc17c81e04ca72a2fab18b1e6c74dd3774f10ee9a3609a56c4c9aac02")
    cfg = MovingShapesConfig(camera_pan_prob=1.0)
    black, tex = generate_clip(cfg, 4), generate_clip(
        MovingShapesConfig(camera_pan_prob=1.0, background="texture"), 4)
    assert np.array_equal(black.trajectories, tex.trajectories) and black.caption == tex.caption
    fg = black.masks.any(0)
    assert np.array_equal(tex.video[fg], black.video[fg])
    assert tex.video[~fg].max() < 60 and tex.video[~fg].std() > 5
    assert len(detect_frame(tex.video[0])) == len(detect_frame(black.video[0]))
    px, py = tex.camera_pan
    assert np.allclose(tex.flow[0][:, ~fg[0]], np.array([[px], [py]]))
    with pytest.raises(ValueError, match="background must be"):
        generate_clip(MovingShapesConfig(background="noise"), 0)


def test_smooth_random_paths_turn_and_change_speed_within_the_range():
    lin = MovingShapesConfig(size=64, num_frames=16, max_objects=2)
    smooth = MovingShapesConfig(size=64, num_frames=16, max_objects=2, motion="smooth")
    turns, speeds = [], []
    for seed in range(12):
        a, b = generate_clip(lin, seed), generate_clip(smooth, seed)
        assert a.caption == b.caption and a.colors == b.colors  # the same objects and start
        assert np.allclose(a.trajectories[:, :2], b.trajectories[:, :2])
        assert np.array_equal(generate_clip(smooth, seed).video, b.video)  # deterministic
        steps = np.diff(b.trajectories, axis=1)
        speeds.append(np.linalg.norm(steps, axis=-1))
        ang = np.arctan2(steps[..., 1], steps[..., 0])
        turns.append(np.abs(np.angle(np.exp(1j * np.diff(ang, axis=1)))))
        for i in range(len(b.colors)):  # flow still follows the centroids
            for f in range(15):
                m = b.masks[i, f] & ~b.masks[:i, f].any(0) if i else b.masks[i, f]
                if m.any():
                    d = b.trajectories[i, f + 1] - b.trajectories[i, f]
                    assert np.allclose(b.flow[f, 0][m], d[0], atol=1e-5)
    sp, tu = np.concatenate([s.ravel() for s in speeds]), np.concatenate([t.ravel() for t in turns])
    assert sp.max() <= 4.0 + 1e-3 and 1.0 <= np.median(sp) <= 4.0  # (a bounce shortens one)
    assert np.median(tu) > 0.05   # the paths turn (a straight line would give 0 off bounces)
    mixed = MovingShapesConfig(size=64, num_frames=16, max_objects=3, motion="mixed")
    assert generate_clip(mixed, 3).video.shape == (16, 64, 64, 3)
    with pytest.raises(ValueError, match="motion must be linear, smooth or mixed"):
        generate_clip(MovingShapesConfig(motion="zigzag"), 0)
