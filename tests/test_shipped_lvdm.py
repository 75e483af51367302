"""The LVDM checkpoint shipped in the package (``lvdm_tiny``): interpolation / extension model,
key-frame model and autoencoder, stored in float16.

The LVDM issue's autoencoder bar is PSNR >= 32 dB on held-out Moving Shapes clips (32 clips,
``benchmarks/ae_moving_shapes.py``: 32.31 dB for the shipped weights in float32). Here, on 4
held-out clips with the float16 weights as shipped, the reconstructions must stay above 30 dB
and every reconstructed frame must be valid (these 4 clips: 32.7 dB); the extension model
continues real clips (at least 75% of its new frames valid)."""

import numpy as np
import pytest
import torch

from vidiff.data.moving_shapes import MovingShapesConfig, generate_clip
from vidiff.evaluation.metrics import evaluate_videos


@pytest.fixture(scope="module")
def pipe():
    from vidiff.pipelines import VideoDiffusionPipeline
    return VideoDiffusionPipeline.from_pretrained("lvdm_tiny")


def _clips(pipe, n, frames):
    from vidiff.data.latents import cache_source
    ms = cache_source(pipe.experiment.data)["moving_shapes"]
    cfg = MovingShapesConfig(**{**ms, "num_frames": frames})
    clips = [generate_clip(cfg, seed=10 ** 7 + i) for i in range(n)]  # seeds it never saw
    x = torch.stack([torch.from_numpy(c.video).permute(3, 0, 1, 2).float() / 127.5 - 1
                     for c in clips])
    return cfg, clips, x


def test_bundle_loads_with_its_key_model(pipe):
    assert pipe.autoencoder is not None and pipe.key_pipeline is not None
    assert pipe.key_pipeline.autoencoder is pipe.autoencoder
    assert pipe.sample_shape(1, None) == (1, 8, 5, 16, 16)
    assert pipe.key_pipeline.experiment.data.frame_stride == 2


def test_autoencoder_reconstructs_held_out_clips(pipe):
    cfg, clips, x = _clips(pipe, 4, 16)
    with torch.no_grad():
        rec = pipe.to_uint8(pipe.encode(x))
    real = np.stack([c.video for c in clips]).astype(np.float64)
    mse = ((rec.astype(np.float64) - real) ** 2).mean()
    psnr = 10 * np.log10(255.0 ** 2 / mse)
    assert psnr > 30.0, psnr
    assert evaluate_videos(list(rec), cfg).validity == 1.0


def test_extension_continues_real_clips(pipe):
    from vidiff.diffusion.masks import mode_mask
    cfg, clips, x = _clips(pipe, 4, 20)
    z = pipe.encode(x)
    given = torch.zeros_like(z)
    given[:, :, :2] = z[:, :, :2]
    out = pipe(num_videos=4, given_frames=given, given_mask=mode_mask("prefix", 5, k=2, batch=4),
               cond_t=0.1, conditioning_method="replacement", num_inference_steps=10,
               sampler="ddim", output_type="latent", progress=False,
               generator=torch.Generator().manual_seed(0))
    new = [v[8:] for v in pipe.to_uint8(out)]  # the 12 generated frames
    m = evaluate_videos(new, cfg)
    assert m.validity >= 0.75, m
