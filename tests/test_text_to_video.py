"""Make-A-Video on the shared U-Net: pseudo-3D convolution, inflation identity, two-stage
training (frozen weights bit-identical), text conditioning with classifier-free guidance and a
negative prompt, fps from the CLI to the network, and prompts in and files out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidiff.config import load_config
from vidiff.files import read_tensors
from vidiff.models import UNet3D, UNet3DConfig
from vidiff.models.inflation import TEMPORAL_LAYERS, inflate
from vidiff.nn import TemporalConv
from vidiff.pipelines import VideoDiffusionPipeline
from vidiff.training import Trainer
from vidiff.training.checkpoint import resolve_checkpoint
from vidiff.training.trainable import apply_trainable

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
             head_channels=8, context_dim=384, temporal_attention=False)
TINY = [
    "model.model_channels=16", "model.channel_mult=[1, 2]", "model.num_res_blocks=1",
    "model.attention_levels=[1]", "model.head_channels=16",
    "data.moving_shapes.size=16", "data.moving_shapes.num_frames=4", "train.batch_size=4",
    "train.warmup_steps=2", "train.lr=3e-3", "train.log_every=5", "train.progress=false",
    "train.tensorboard=false", "train.ckpt_every=1000", "text_encoder.max_length=8",
]


def _randomize(m: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


# -- pseudo-3D convolution -----------------------------------------------------------------------
def test_temporal_conv_is_identity_at_init_and_a_1d_conv_over_frames():
    x = torch.randn(2 * 5, 6, 3, 4)
    tc = TemporalConv(6)
    assert torch.equal(tc(x, 5), x)
    _randomize(tc)
    y = tc(x, 5)
    # reference: conv1d over the frames at each pixel, zero padding at the clip's ends
    seq = x.reshape(2, 5, 6, 3, 4).permute(0, 3, 4, 2, 1).reshape(-1, 6, 5)
    ref = F.conv1d(seq, tc.weight, tc.bias, padding=1).reshape(2, 3, 4, 6, 5)
    assert torch.allclose(y, ref.permute(0, 4, 3, 1, 2).reshape(10, 6, 3, 4), atol=1e-5)
    # one group everywhere = no groups; an image appended alone in its group is untouched
    assert torch.allclose(tc(x, 5, torch.zeros(2, 5, dtype=torch.long)), y, atol=1e-5)
    groups = torch.tensor([[0, 0, 0, 0, 1]] * 2)
    z = tc(x, 5, groups).reshape(2, 5, 6, 3, 4)
    x4 = x.reshape(2, 5, 6, 3, 4)[:, 4]  # alone in its group: an image, untouched
    assert torch.equal(z[:, 4], x4)
    clip = tc(x.reshape(2, 5, 6, 3, 4)[:, :4].reshape(8, 6, 3, 4), 4).reshape(2, 4, 6, 3, 4)
    assert torch.allclose(z[:, :4], clip, atol=1e-5)
    assert torch.equal(tc(x[:2], 1), x[:2])  # one frame: an image, no temporal layer
    with pytest.raises(ValueError, match="odd"):
        TemporalConv(4, kernel_size=2)


# -- inflation: identity at init -----------------------------------------------------------------
@pytest.mark.parametrize("fps", [False, True])
def test_inflated_model_equals_the_image_model_frame_by_frame(fps):
    torch.manual_seed(0)
    image = UNet3D(UNet3DConfig(**SMALL))
    _randomize(image)  # a "trained" text-to-image model
    video = inflate(image, fps_conditioning=fps, temporal_attention_levels=(0, 1))
    assert any(isinstance(m, TemporalConv) for m in video.modules())
    x, t = torch.randn(2, 3, 4, 16, 16), torch.rand(2)
    ctx = torch.randn(2, 5, 384)
    extra = {"fps": torch.tensor([4.0, 16.0])} if fps else {}
    out = video(x, t, context=ctx, **extra)
    frames = torch.stack([image(x[:, :, f], t, context=ctx) for f in range(4)], dim=2)
    assert (out - frames).abs().max() <= 1e-5
    # per-frame noise levels too
    tf = torch.rand(2, 4)
    out = video(x, tf, context=ctx, **extra)
    frames = torch.stack([image(x[:, :, f], tf[:, f], context=ctx) for f in range(4)], dim=2)
    assert (out - frames).abs().max() <= 1e-5
    # once the temporal layers train, frames mix
    _randomize(video, seed=1)
    assert (video(x, t, context=ctx, **extra) - frames).abs().max() > 1e-3


def test_trainable_patterns_select_the_temporal_layers_only():
    video = inflate(UNet3D(UNet3DConfig(**SMALL)), fps_conditioning=True)
    from vidiff.nn import TemporalAttention
    keep = apply_trainable(video, list(TEMPORAL_LAYERS))
    temporal = {f"{name}.{p}" for name, m in video.named_modules()
                if isinstance(m, (TemporalConv, TemporalAttention))
                for p, _ in m.named_parameters()}
    temporal |= {n for n, _ in video.named_parameters() if n.startswith("fps_embed.")}
    assert any(n.endswith("rel_pos.table") for n in temporal)
    assert set(keep) == temporal  # every temporal parameter, nothing else
    assert {n for n, p in video.named_parameters() if p.requires_grad} == temporal
    video.conv_in.requires_grad_(False)  # a part the caller froze stays frozen
    assert not any(n.startswith("conv_in") for n in apply_trainable(video, ["conv_in.*",
                                                                            "fps_embed.*"]))
    with pytest.raises(ValueError, match="leaves nothing to train"):
        apply_trainable(video, [])
    with pytest.raises(ValueError, match="matches no parameter"):
        apply_trainable(video, ["*tmporal*"])


# -- two-stage training ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_stage(tmp_path_factory):
    """Stage 1 (text-to-image on captioned frames) then stage 2 (inflated, unlabelled clips,
    temporal layers only), a few steps each: the run folders."""
    d = tmp_path_factory.mktemp("t2v")
    s1 = load_config(ROOT / "configs" / "t2v_tiny_stage1.yaml",
                     TINY + [f"train.out_dir={d / 's1'}", "train.steps=3", "train.batch_size=8"])
    Trainer(s1).fit()
    s2 = load_config(ROOT / "configs" / "t2v_tiny.yaml",
                     TINY + [f"train.out_dir={d / 's2'}", "train.steps=3",
                             f"train.init_from={d / 's1'}", "model.temporal_attention_levels=[1]"])
    tr = Trainer(s2)
    tr.fit()
    return d, tr


def test_stage_two_leaves_the_image_weights_bit_identical(two_stage):
    d, tr = two_stage
    before = read_tensors(resolve_checkpoint(d / "s1") / "model.safetensors")
    after = read_tensors(resolve_checkpoint(d / "s2") / "model.safetensors")
    raw = tr.model.state_dict()
    assert set(before) < set(after)
    for k, v in before.items():  # EMA and raw weights alike
        assert torch.equal(after[k], v), k
        assert torch.equal(raw[k].float(), v), k
    new = [k for k in after if k not in before]
    assert any("temporal" in k for k in new) and any(k.startswith("fps_embed") for k in new)
    convs = [k for k in new if k.endswith(("temporal1.weight", "temporal2.weight"))]
    dirac = lambda w: torch.nn.init.dirac_(torch.empty_like(w))  # noqa: E731  (their init)
    assert convs and any(not torch.equal(raw[k], dirac(raw[k])) for k in convs)
    outs = [k for k in new if k.endswith("attn.to_out.weight")]  # temporal attention: zero init
    assert outs and any(raw[k].abs().sum() > 0 for k in outs), "temporal attention did not train"
    assert tr.model.sample_shape == (4, 16)


def test_stage_one_is_a_text_to_image_model(two_stage):
    d, _ = two_stage
    pipe = VideoDiffusionPipeline.from_pretrained(d / "s1")
    assert pipe.experiment.data.images and pipe.model.sample_shape == (1, 16)
    assert "context" in pipe.model.accepted_conditions
    assert not any(isinstance(m, TemporalConv) for m in pipe.model.modules())
    img = pipe(prompt="a red circle", num_inference_steps=1)
    assert img.shape == (1, 1, 16, 16, 3)


def test_text_dropout_gives_the_empty_prompt():
    from vidiff.conditioning.text import TextConditionEncoder

    class Fake:  # records what would be encoded
        dim = 384

        def encode(self, prompts):
            self.seen = list(prompts)
            from vidiff.conditioning.text_encoders import TextEmbeddings
            n = len(prompts)
            return TextEmbeddings(torch.zeros(n, 2, 384), torch.ones(n, 2, dtype=torch.bool),
                                  torch.zeros(n, 384))

    enc, model = Fake(), UNet3D(UNet3DConfig(**SMALL))
    batch = {"video": torch.zeros(400, 3, 2, 2), "caption": ["a red circle"] * 400}
    g = torch.Generator().manual_seed(0)
    TextConditionEncoder(enc).for_training(model, batch, device=torch.device("cpu"),
                                           generator=g, drop_prob=0.25)
    empty = enc.seen.count("")
    assert 70 <= empty <= 130 and set(enc.seen) == {"", "a red circle"}
    TextConditionEncoder(enc, drop_captions=True).for_training(
        model, batch, device=torch.device("cpu"), generator=g, drop_prob=0.0)
    assert set(enc.seen) == {""}  # unlabelled video: every prompt empty


# -- sampling: classifier-free guidance with a negative prompt --------------------------------
def test_guidance_with_a_negative_prompt_follows_the_formula(two_stage):
    d, _ = two_stage
    pipe = VideoDiffusionPipeline.from_pretrained(d / "s2")
    _randomize(pipe.model)
    seen = {}

    def grab(step, t, z, x0):
        seen.setdefault(step, (t.clone(), x0.clone()))

    w, p, n = 4.0, "a red circle moving left", "a blue square"
    shape = pipe.sample_shape(2, None)
    z_T = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    pipe(num_videos=2, prompt=p, negative_prompt=n, guidance_scale=w, num_inference_steps=2,
         sampler="ddim", fps=8, generator=torch.Generator().manual_seed(3), callback=grab,
         output_type="pt")
    t0, x0 = seen[0]
    enc = pipe.condition_encoders()["context"].text_encoder
    fps = torch.full((2,), 8.0)
    xc = pipe.denoiser(context=enc.encode([p, p]).tokens, fps=fps)(z_T, t0)
    xu = pipe.denoiser(context=enc.encode([n, n]).tokens, fps=fps)(z_T, t0)
    assert torch.allclose(x0, (1 + w) * xc - w * xu, atol=1e-5)  # Ho & Salimans, eq. 6
    xe = pipe.denoiser(context=enc.encode(["", ""]).tokens, fps=fps)(z_T, t0)
    assert not torch.allclose(xu, xe, atol=1e-4)  # the negative prompt is not the empty one
    with pytest.raises(ValueError, match="negative_prompt needs a prompt"):
        pipe(negative_prompt=n, num_inference_steps=1)
    with pytest.raises(ValueError, match="3 prompts for 2 videos"):
        pipe(num_videos=2, prompt=["a", "b", "c"], num_inference_steps=1)
    one_each = pipe(prompt=["a red circle", "a blue square"], num_inference_steps=1)
    assert len(one_each) == 2  # a list of prompts: one video a prompt
    for bad in (3, [], ["a", 2]):
        with pytest.raises(ValueError, match="prompt must be a string or a non-empty list"):
            pipe(prompt=bad, num_inference_steps=1)
    with pytest.raises(ValueError, match=r"fps must be in \(0, 1000\], got -3"):
        pipe(prompt="a red circle", fps=-3, num_inference_steps=1)


# -- the CLI: fps reaches the network; prompts in, files out -----------------------------------
@pytest.fixture(scope="module")
def fps_checkpoint(two_stage, tmp_path_factory):
    """The stage-2 pipeline with every weight (fps embedding included) made non-trivial."""
    d, _ = two_stage
    pipe = VideoDiffusionPipeline.from_pretrained(d / "s2")
    _randomize(pipe.model)
    out = tmp_path_factory.mktemp("ckpt") / "t2v"
    pipe.save_pretrained(out)
    return out


def _clips(folder: Path) -> list[np.ndarray]:
    from vidiff.data.video_io import read_video
    return [read_video(f) for f in sorted(folder.glob("clip_*.mp4"))]


def test_fps_from_the_cli_reaches_the_network(fps_checkpoint, tmp_path, capsys):
    from vidiff.cli import main

    outs = {}
    for name, fps in (("a", "4"), ("b", "16"), ("c", "4")):
        assert main(["sample", str(fps_checkpoint), "--prompt", "a red circle", "--fps", fps,
                     "--num-videos", "2", "--steps", "2", "--quiet",
                     "--out", str(tmp_path / f"{name}.mp4")]) == 0
        outs[name] = _clips(tmp_path / f"{name}_clips")
    assert all(np.array_equal(x, y) for x, y in zip(outs["a"], outs["c"]))
    assert not all(np.array_equal(x, y) for x, y in zip(outs["a"], outs["b"]))
    # --video-fps sets only the file's rate: the clips are those of --fps 4
    assert main(["sample", str(fps_checkpoint), "--prompt", "a red circle", "--fps", "4",
                 "--video-fps", "12", "--num-videos", "2", "--steps", "2", "--quiet",
                 "--out", str(tmp_path / "d.mp4")]) == 0
    assert all(np.array_equal(x, y) for x, y in zip(outs["a"], _clips(tmp_path / "d_clips")))
    from vidiff.data.video_io import probe_video
    assert round(probe_video(tmp_path / "d.mp4")["fps"]) == 12


def test_prompts_file_writes_one_output_per_prompt(fps_checkpoint, tmp_path, capsys):
    from vidiff.cli import main

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\n\n  a blue square  \n", encoding="utf-8")
    assert main(["sample", str(fps_checkpoint), "--prompts", str(prompts), "--num-videos", "1",
                 "--steps", "1", "--quiet", "--guidance-scale", "3",
                 "--negative-prompt", "a green box", "--out", str(tmp_path / "o.mp4")]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [o["prompt"] for o in report["outputs"]] == ["a red circle moving left",
                                                        "a blue square"]
    for i, o in enumerate(report["outputs"]):
        assert Path(o["video"]).name == f"o_{i:03d}.mp4" and Path(o["contact_sheet"]).exists()
        labels = (Path(o["clips"]) / "labels.txt").read_text(encoding="utf-8")
        assert labels == o["prompt"] + "\n"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert main(["sample", str(fps_checkpoint), "--prompts", str(empty)]) == 2
    assert "no prompt in it" in capsys.readouterr().err
    # a model without text conditioning: one line naming what it accepts
    assert main(["sample", "vdm_tiny", "--prompt", "a red circle", "--steps", "1",
                 "--out", str(tmp_path / "v.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this model takes no prompt" in err[0]


# -- latent recipes: fps and captions through a latent cache -----------------------------------
def test_latent_cache_keeps_fps_and_captions(tmp_path):
    from vidiff.cli.encode_latents import _videos_keeping
    from vidiff.data import MovingShapesConfig
    from vidiff.data.datasets import MovingShapesDataset, collate
    from vidiff.data.latents import LatentDataset, encode_to_cache
    from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig

    ae = VideoAutoencoder(VideoAutoencoderConfig(base_channels=8, channel_mult=(1, 2),
                                                 spatial_factor=2, temporal_factor=1,
                                                 latent_channels=4))
    ds = MovingShapesDataset(MovingShapesConfig(size=16, num_frames=4, captions="varied",
                                                fps_choices=(4, 16)))
    kept = {"fps": [], "caption": []}
    out = encode_to_cache(ae, _videos_keeping((ds[i] for i in range(3)), kept),
                          tmp_path / "z.safetensors", {}, progress=False, fps=kept["fps"],
                          captions=kept["caption"])
    assert kept["caption"] == [ds[i]["caption"] for i in range(3)]
    lat = LatentDataset(out, num_frames=2, frame_stride=2)
    item = lat[lat.positions * 2]  # the third clip
    assert item["caption"] == ds[2]["caption"] and item["fps"] == ds[2]["fps"] / 2
    batch = collate([lat[0], lat[lat.positions]])
    assert batch["fps"].tolist() == [ds[0]["fps"] / 2, ds[1]["fps"] / 2]
    assert batch["caption"] == [ds[0]["caption"], ds[1]["caption"]]


def test_image_folder_with_a_captions_csv(tmp_path):
    from PIL import Image

    from vidiff.data.images import ImageFolderDataset
    from vidiff.registry import DATASETS

    (tmp_path / "im").mkdir()
    for i, c in enumerate([(255, 0, 0), (0, 0, 255)]):
        Image.new("RGB", (40, 30), c).save(tmp_path / "im" / f"{i}.png")
    (tmp_path / "list.csv").write_text("path,caption\nim/0.png,a red square\nim/1.png,\n")
    ds = ImageFolderDataset(tmp_path / "list.csv", size=16)
    assert ds.clip_shape == (1, 16) and len(ds) == 2
    assert ds[0]["video"].shape == (3, 16, 16) and ds[0]["caption"] == "a red square"
    assert ds[1]["caption"] == "" and ds[0]["video"][0].mean() > 0.9
    cfg = load_config(ROOT / "configs" / "t2v_small_stage1.yaml",
                      [f"data.path={tmp_path / 'list.csv'}", "data.size=16"])
    assert len(DATASETS.get(cfg.data.kind)(cfg.data, 0)) == 2
    assert "caption" not in ImageFolderDataset(tmp_path / "im", size=16)[0]


def test_eval_reports_prompt_adherence_for_text_models(fps_checkpoint, tmp_path, capsys):
    from vidiff.cli import main

    assert main(["eval", str(fps_checkpoint), "--num-videos", "3", "--batch-size", "2",
                 "--steps", "1", "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    adh = rep["prompt_adherence"]
    assert len(rep["prompts"]) == 3 and adh["num_objects"] == 3
    assert adh["direction"] is None  # stage 2 dropped the captions: no text with motion
    assert 0 <= adh["color"] <= 1 and rep["real_mean_speed"] > 0
