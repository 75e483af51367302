"""Joint image-video training (VDM) in every recipe kind: pixel clips with images of another
size, pixel clips through an autoencoder, and a latent cache."""

import numpy as np
import pytest
import torch
from PIL import Image

from test_training import tiny
from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig
from vidiff.training import Trainer

AE = VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2), spatial_factor=4,
                            temporal_factor=2, latent_channels=4, scale_factor=0.5)
LATENT = ["model.in_channels=4", "model.out_channels=4", "model.channel_mult=[1]",
          "model.attention_levels=[0]", "model.temporal_attention_levels=[0]",
          "diffusion.clip=null", "train.steps=2", "train.ckpt_every=1000"]


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # 24x24: neither the clips' 16 nor data.size's 64
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


def test_images_of_another_size_than_the_clips(tmp_path, images):
    tr = Trainer(tiny(tmp_path, "data.joint_images=2", f"data.image_path={images}",
                      "train.steps=2", "train.ckpt_every=1000"))
    b = tr.batch(0)
    assert b["video"].shape == (4, 3, 6, 16, 16)
    assert b["frame_groups"].tolist()[1] == [0, 0, 0, 0, 1, 2]
    res = tr.fit()
    assert all(torch.isfinite(torch.tensor(res.losses)))


@pytest.mark.parametrize("with_folder", [False, True])
def test_pixel_clips_through_an_autoencoder(tmp_path, images, with_folder):
    """Clips are encoded whole, each image on its own (held for f_t frames): 4 pixel frames
    -> 2 latent frames, then one latent frame per image, each its own frame group."""
    VideoAutoencoder(AE).save_pretrained(tmp_path / "ae")
    extra = [f"data.image_path={images}"] if with_folder else []
    tr = Trainer(tiny(tmp_path / "run", f"autoencoder={tmp_path / 'ae'}", "data.joint_images=2",
                      *LATENT, *extra))
    seen = {}
    orig = tr.model.forward

    def spy(x, t, **kw):
        seen["x"], seen["groups"] = x.shape, kw["frame_groups"]
        return orig(x, t, **kw)
    tr.model.forward = spy
    res = tr.fit()
    assert all(torch.isfinite(torch.tensor(res.losses)))
    assert seen["x"] == (4, 4, 4, 4, 4)
    assert seen["groups"].tolist()[0] == [0, 0, 1, 2]


@pytest.mark.parametrize("with_folder", [False, True])
def test_latent_cache(tmp_path, images, with_folder):
    from vidiff.cli import main
    VideoAutoencoder(AE).save_pretrained(tmp_path / "ae")
    cache = tmp_path / "z.safetensors"
    assert main(["encode-latents", str(tmp_path / "ae"), "--out", str(cache), "--num-clips", "3",
                 "--frames", "8", "--size", "16", "--batch-size", "3"]) == 0
    extra = [f"data.image_path={images}"] if with_folder else []
    tr = Trainer(tiny(tmp_path / "run", f"autoencoder={tmp_path / 'ae'}", "data.kind=latents",
                      f"data.path={cache}", "data.num_frames=4", "data.size=16",
                      "data.joint_images=2", *LATENT, *extra))
    b = tr.batch(0)
    assert b["latents"].shape == (4, 4, 4, 4, 4)  # 2 latent frames + 2 image frames
    assert b["frame_groups"].tolist()[0] == [0, 0, 1, 2]
    res = tr.fit()
    assert all(torch.isfinite(torch.tensor(res.losses)))
