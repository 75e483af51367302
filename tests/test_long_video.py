"""Long video: autoregressive and hierarchical window placement, streaming decode equal to whole
decode, and a file of the requested length. Tiny random models: this checks the mechanics."""

import numpy as np
import pytest
import torch

from vidiff.config import ExperimentConfig
from vidiff.data import read_video
from vidiff.models import UNet3D, UNet3DConfig
from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig
from vidiff.pipelines import VideoDiffusionPipeline
from vidiff.pipelines.long_video import StreamingDecoder, autoregressive, generate_long, hierarchical


def _pipe(latent: bool, frames: int = 4):
    torch.manual_seed(0)
    exp = ExperimentConfig()
    exp.data.moving_shapes.size, exp.data.moving_shapes.num_frames = 16, frames
    exp.sample.num_frames = frames
    exp.diffusion.clip = None if latent else 1.0
    ch = 4 if latent else 3
    net = UNet3D(UNet3DConfig(in_channels=ch, out_channels=ch, model_channels=8, channel_mult=(1,),
                              num_res_blocks=1, attention_levels=(0,), head_channels=8,
                              mask_channel=True))
    ae = None
    if latent:
        ae = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2, 2),
                                                     spatial_factor=4, temporal_factor=2))
    return VideoDiffusionPipeline(net, exp.diffusion, exp, ae)


def test_autoregressive_keeps_context_and_passes_masks():
    pipe = _pipe(False, frames=4)
    calls = []
    orig = pipe.__call__

    def spy(**kw):
        calls.append(kw)
        return orig(**kw)
    first = torch.rand(1, 3, 4, 16, 16) * 2 - 1
    pipe_call = type(pipe).__call__
    try:
        type(pipe).__call__ = lambda self, **kw: spy(**kw)
        chunks = list(autoregressive(pipe, 5, window=4, context=2, first=first, cond_t=0.1,
                                     uncond_weight=1.0, num_inference_steps=2))
    finally:
        type(pipe).__call__ = pipe_call
    assert sum(c.shape[2] for c in chunks) == 5 and [c.shape[2] for c in chunks] == [2, 2, 1]
    g = calls[0]
    assert g["given_mask"].tolist() == [[True, True, False, False]]
    assert torch.equal(g["given_frames"][:, :, :2], first[:, :, 2:])
    assert g["cond_t"] == 0.1 and g["uncond_weight"] == 1.0


def test_hierarchical_places_keys_at_the_stride():
    pipe = _pipe(False, frames=5)
    out = torch.cat(list(hierarchical(pipe, 13, window=5, stride=2, num_inference_steps=2)), 2)
    assert out.shape[2] == 13
    with pytest.raises(ValueError):
        list(hierarchical(pipe, 9, window=5, stride=3))


def test_streaming_decode_equals_whole_decode():
    pipe = _pipe(True)
    z = torch.randn(1, 4, 40, 4, 4)
    whole = pipe.to_uint8(z)
    dec = StreamingDecoder(pipe, chunk=3)
    parts = []
    for i in range(0, 40, 7):
        parts += dec.push(z[:, :, i:i + 7])
    parts += dec.flush()
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape
    assert np.abs(streamed.astype(int) - whole.astype(int)).max() <= 1


@pytest.mark.parametrize("mode", ["autoregressive", "hierarchical"])
def test_generate_long_writes_the_requested_frames(tmp_path, mode):
    pipe = _pipe(True, frames=6)  # 3 latent frames per window
    res = generate_long(pipe, 22, tmp_path / "long.mp4", mode=mode, context=1,
                        num_inference_steps=2, progress=False)
    assert res["frames"] == 22
    assert read_video(tmp_path / "long.mp4").shape == (22, 16, 16, 3)


def test_generate_long_batches_several_videos(tmp_path):
    """Several videos in one batch: one file each, the requested length, and not copies."""
    pipe = _pipe(True, frames=6)
    res = generate_long(pipe, 14, tmp_path / "long.mkv", mode="autoregressive", context=1,
                        num_videos=3, num_inference_steps=2, progress=False,
                        generator=torch.Generator().manual_seed(0))
    assert res["frames"] == 14
    assert [p.rsplit("/", 1)[1] for p in res["paths"]] == ["long_0.mkv", "long_1.mkv", "long_2.mkv"]
    vids = [read_video(p) for p in res["paths"]]
    assert all(v.shape == (14, 16, 16, 3) for v in vids)
    assert not np.array_equal(vids[0], vids[1])
    with pytest.raises(ValueError, match="num_videos"):
        generate_long(pipe, 14, tmp_path / "x.mkv", num_videos=0)


def test_key_pipeline_bundles_shares_the_autoencoder_and_exports_half(tmp_path, caplog):
    """A hierarchical checkpoint: the interpolation pipeline with its key-frame pipeline in
    ``key/`` (no second autoencoder), optionally stored in float16; a key model trained on
    another autoencoder's latents is refused."""
    import logging
    main, key = _pipe(True, frames=6), _pipe(True, frames=6)
    key.autoencoder = main.autoencoder
    key.save_pretrained(tmp_path / "key_ckpt")
    main.attach_key_pipeline(tmp_path / "key_ckpt")
    assert main.key_pipeline.autoencoder is main.autoencoder
    main.save_pretrained(tmp_path / "bundle", dtype=torch.float16)
    assert (tmp_path / "bundle" / "key" / "model.safetensors").is_file()
    assert not (tmp_path / "bundle" / "key" / "autoencoder").exists()
    from safetensors.torch import load_file
    assert all(v.dtype == torch.float16 for v in load_file(
        str(tmp_path / "bundle" / "key" / "model.safetensors")).values() if v.is_floating_point())
    loaded = VideoDiffusionPipeline.from_pretrained(tmp_path / "bundle")
    assert loaded.key_pipeline.autoencoder is loaded.autoencoder
    for a, b in zip(loaded.key_pipeline.model.parameters(), key.model.parameters()):
        assert a.dtype == torch.float32 and torch.allclose(a, b, atol=1e-3, rtol=1e-3)
    with caplog.at_level(logging.WARNING):
        res = generate_long(loaded, 14, tmp_path / "h.mkv", mode="hierarchical", stride=2,
                            num_inference_steps=2, progress=False)
    assert res["frames"] == 14 and "no key-frame model" not in caplog.text
    other = _pipe(True, frames=6)
    with torch.no_grad():
        other.autoencoder.enc_in.weight.add_(0.1)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="another autoencoder"):
        main.attach_key_pipeline(tmp_path / "other")


def test_cli_export_key_half_and_long(tmp_path, capsys):
    import json
    from vidiff.cli import main
    a, k = _pipe(True, frames=6), _pipe(True, frames=6)
    k.autoencoder = a.autoencoder
    # a decoder fine-tuned with the encoder frozen replaces the bundled one; the scale factor
    # stays the one the latent models were trained with
    ft = _pipe(True, frames=6).autoencoder
    with torch.no_grad():
        ft.dec_out.weight.mul_(0.5)
    ft.config.scale_factor = 7.0
    ft.save_pretrained(tmp_path / "ae_ft")
    a.autoencoder.config.scale_factor = k.autoencoder.config.scale_factor = 2.0
    a.save_pretrained(tmp_path / "interp")
    k.save_pretrained(tmp_path / "keys")
    assert main(["export", str(tmp_path / "interp"), "--key", str(tmp_path / "keys"), "--half",
                 "--decoder", str(tmp_path / "ae_ft"), "--out", str(tmp_path / "bundle")]) == 0
    assert json.loads(capsys.readouterr().out)["key"] is True
    b = VideoDiffusionPipeline.from_pretrained(tmp_path / "bundle")
    assert b.autoencoder.config.scale_factor == 2.0
    assert torch.allclose(b.autoencoder.dec_out.weight, ft.dec_out.weight, atol=1e-3)
    assert b.key_pipeline.autoencoder is b.autoencoder
    assert main(["long", str(tmp_path / "bundle"), "--mode", "hierarchical", "--stride", "2",
                 "--frames", "12", "--steps", "2", "--num-videos", "2",
                 "--out", str(tmp_path / "l.mkv")]) == 0
    assert read_video(tmp_path / "l_1.mkv").shape == (12, 16, 16, 3)
    capsys.readouterr()
    bad = _pipe(True, frames=6)
    with torch.no_grad():
        bad.autoencoder.enc_out.bias.add_(1.0)
    bad.save_pretrained(tmp_path / "bad")
    assert main(["long", str(tmp_path / "interp"), "--key-checkpoint", str(tmp_path / "bad"),
                 "--frames", "12", "--out", str(tmp_path / "m.mkv")]) == 2
    assert "another autoencoder" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "interp"), "--decoder", str(tmp_path / "bad"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "encoder differs" in capsys.readouterr().err
