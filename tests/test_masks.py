"""Mask placement of every frame-conditioning mode, and frame-conditioned training."""

import pytest
import torch

from vidiff.diffusion import FrameMaskConfig, mode_mask, sample_frame_masks


def test_mode_placement():
    assert mode_mask("none", 6).tolist() == [[False] * 6]
    assert mode_mask("prefix", 6, k=2).tolist() == [[True, True, False, False, False, False]]
    assert mode_mask("sparse", 9, stride=4).tolist() == [[True, False, False, False, True,
                                                          False, False, False, True]]
    assert mode_mask("first", 4).tolist() == [[True, False, False, False]]
    with pytest.raises(ValueError):
        mode_mask("prefix", 4, k=4)
    with pytest.raises(ValueError):
        mode_mask("diagonal", 4)


def test_mix_sampling():
    cfg = FrameMaskConfig(none=1, prefix=1, sparse=1, first=0, max_prefix=3, max_cond_t=0.2)
    g = torch.Generator().manual_seed(0)
    given, ct = sample_frame_masks(cfg, 600, 8, g)
    kinds = {"none": 0, "prefix": 0, "sparse": 0}
    for row in given.tolist():
        if not any(row):
            kinds["none"] += 1
        elif row == mode_mask("sparse", 8, stride=4)[0].tolist():
            kinds["sparse"] += 1
        else:
            k = row.index(False)
            assert 1 <= k <= 3 and not any(row[k:])
            kinds["prefix"] += 1
    assert all(150 < v < 250 for v in kinds.values()), kinds
    assert (ct >= 0).all() and (ct <= 0.2).all() and ct.std() > 0


def test_frame_conditioned_training_runs(tmp_path):
    from test_training import tiny
    from vidiff.training import Trainer
    cfg = tiny(tmp_path, "train.steps=3", "model.mask_channel=true",
               "diffusion.frame_masks.prefix=1", "diffusion.frame_masks.sparse=1",
               "diffusion.frame_masks.sparse_stride=2", "diffusion.frame_masks.max_cond_t=0.1",
               "train.ckpt_every=1000")
    seen = []
    tr = Trainer(cfg)
    orig = tr.model.forward

    def spy(x, t, **kw):
        seen.append((t.shape, kw.get("frame_mask")))
        return orig(x, t, **kw)
    tr.model.forward = spy
    tr.fit()
    assert seen and all(s[0] == (4, 4) for s in seen)  # per-frame times
    assert all(s[1] is not None and s[1].shape == (4, 4) for s in seen)
