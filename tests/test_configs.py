"""Every shipped recipe loads, validates and builds its model."""

from pathlib import Path

import pytest
import torch

from vidiff.config import ConfigError, load_config
from vidiff.training import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_builds(path):
    cfg = load_config(path)
    model = build_model(cfg.model)
    assert model.num_parameters() > 0
    ms = cfg.data.moving_shapes
    if cfg.task == "diffusion" and not cfg.autoencoder:
        x = torch.zeros(1, 3, 2, ms.size, ms.size)
        kw = {"fps": torch.tensor([8.0])} if "fps" in model.accepted_conditions else {}
        assert model(x, torch.rand(1), **kw).shape == x.shape


def test_overrides_and_errors():
    cfg = load_config(CONFIGS[0], ["train.lr=5e-4", "model.channel_mult=[1, 2]",
                                   "sample.sampler=pc"])
    assert cfg.train.lr == 5e-4 and cfg.model["channel_mult"] == [1, 2]
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(CONFIGS[0], ["train.steps=many"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(CONFIGS[0], ["train.steps"])
