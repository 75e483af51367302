"""The shape of the library: registries, components and manifests, and a new system added
through the registries alone (a toy model, task, dataset and pipeline defined in this file,
trained and sampled from the CLI with no edit to shared code)."""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from vidiff.config import ConfigError, load_config
from vidiff.diffusion import build_schedule, diffusion_loss
from vidiff.models import ModelMixin
from vidiff.pipelines import DiffusionPipeline, VideoDiffusionPipeline
from vidiff.registry import DATASETS, PIPELINES, TASKS, Registry, RegistryError
from vidiff.training.tasks import Task

ROOT = Path(__file__).resolve().parents[1]


# -- a new system, through the registries alone ------------------------------------------------
@dataclass
class ToyNetConfig:
    in_channels: int = 3
    out_channels: int = 3
    width: int = 8
    sample_size: int | None = None
    num_frames: int | None = None


class ToyNet(ModelMixin):  # a ModelMixin subclass is a MODELS entry by its name
    """A per-pixel MLP over channels with the time as an extra input."""

    config_class = ToyNetConfig

    def __init__(self, config: ToyNetConfig):
        super().__init__()
        self.config = c = config
        self.net = nn.Sequential(nn.Conv3d(c.in_channels + 1, c.width, 1), nn.SiLU(),
                                 nn.Conv3d(c.width, c.out_channels, 1))

    def forward(self, x, t):
        tt = t.reshape(t.shape[0], 1, -1, 1, 1).expand(-1, 1, x.shape[2], *x.shape[3:])
        return self.net(torch.cat([x, tt.to(x.dtype)], dim=1))


class ToyClips(torch.utils.data.Dataset):
    """Constant-colour clips; item i is a pure function of (seed, i)."""

    def __init__(self, frames: int, size: int, seed: int):
        self.frames, self.size, self.seed = frames, size, seed

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 1000 + i)
        colour = torch.rand(3, 1, 1, 1, generator=g) * 2 - 1
        return {"video": colour.expand(3, self.frames, self.size, self.size).clone()}


DATASETS.register("toy_clips")(lambda d, seed: ToyClips(d.num_frames, d.size, seed))


@TASKS.register("toy_denoising")
class ToyDenoising(Task):
    pipeline_class = "ToyPipeline"

    def __init__(self, cfg, device, model=None):
        super().__init__(cfg, device, model)
        self.schedule = build_schedule(cfg.diffusion.schedule)
        self.model.config.sample_size, self.model.config.num_frames = cfg.data.size, \
            cfg.data.num_frames

    def build_dataset(self, seed):
        return DATASETS.get(self.cfg.data.kind)(self.cfg.data, seed)

    def loss(self, net, batch, g, step):
        return diffusion_loss(net, self.schedule, batch["video"], prediction="eps",
                              generator=g)


@PIPELINES.register()
class ToyPipeline(VideoDiffusionPipeline):
    def __call__(self, *args, **kw):
        print("ToyPipeline sampling", file=sys.stderr)
        return super().__call__(*args, **kw)


def test_a_new_system_trains_and_samples_through_the_registries(tmp_path):
    """From a shell, as a user would: the recipe's ``imports`` names this module, whose import
    registers the parts; the checkpoint keeps the list, so sampling finds them again."""
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(
        "imports: [test_architecture]\n"
        "model: {type: ToyNet, width: 16}\ntask: toy_denoising\n"
        "data: {kind: toy_clips, num_frames: 3, size: 8}\n"
        "diffusion: {prediction: eps}\n"
        "train: {batch_size: 2, progress: false, tensorboard: false, warmup_steps: 1}\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "vidiff.cli", "train", str(recipe), "--steps", "2",
                        "--out-dir", str(out)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ck = out / "checkpoints" / "step_000002"
    assert json.loads((ck / "model_index.json").read_text())["_class_name"] == "ToyPipeline"
    r = subprocess.run([sys.executable, "-m", "vidiff.cli", "sample", str(out), "--steps", "2",
                        "--num-videos", "2", "--out", str(tmp_path / "toy.mp4"), "--quiet"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ToyPipeline sampling" in r.stderr
    files = json.loads(r.stdout)
    from vidiff.data import read_video
    assert read_video(files["video"]).shape[0] == 3
    assert read_video(tmp_path / "toy_clips" / "clip_001.mp4").shape == (3, 8, 8, 3)
    assert isinstance(DiffusionPipeline.from_pretrained(out), ToyPipeline)
    # without the import, the recipe's unknown type is one line naming what exists
    recipe.write_text(recipe.read_text().replace("imports: [test_architecture]\n", ""))
    r = subprocess.run([sys.executable, "-m", "vidiff.cli", "train", str(recipe)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown model type 'ToyNet'; known: [" in r.stderr


# -- registries and recipes --------------------------------------------------------------------
@pytest.mark.parametrize("override,needle", [
    ("model.type=UNet4D", "unknown model type 'UNet4D'; known: ["),
    ("task=distill", "unknown task 'distill'; known: ['autoencoder', 'diffusion'"),
    ("data.kind=webdataset", "unknown data.kind 'webdataset'; known: ['image_folder', 'latents',"),
    ("model.widht=3", "config.model: unknown config keys ['widht']; valid: ["),
    ("autoencoder_loss.kl=1", "config.autoencoder_loss: unknown key(s) ['kl']"),
])
def test_unknown_parts_are_one_line_errors_naming_what_exists(override, needle):
    recipe = "lvdm_ae_tiny" if override.startswith("autoencoder_loss") else "vdm_tiny"
    with pytest.raises(ConfigError) as e:
        load_config(ROOT / "configs" / f"{recipe}.yaml", [override])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_registry_refuses_a_second_entry_of_the_same_name():
    reg = Registry("widget")
    reg.register("a")(int)
    with pytest.raises(RegistryError, match="widget 'a' is already registered"):
        reg.register("a")(float)
    assert reg.get("a") is int and "a" in reg and list(reg) == ["a"]


# -- components, manifests, the shipped checkpoints -------------------------------------------
def test_components_save_and_load_by_name_with_a_manifest(tmp_path):
    pipe = DiffusionPipeline.from_pretrained("lvdm_tiny")
    assert type(pipe) is VideoDiffusionPipeline
    assert set(pipe.components) == {"denoiser", "autoencoder", "key"}
    assert pipe.key_pipeline.autoencoder is pipe.autoencoder  # shared, not a copy
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["autoencoder"] == ["model", "autoencoder"] and index["key"] == ["pipeline", "key"]
    key_index = json.loads((tmp_path / "p" / "key" / "model_index.json").read_text())
    assert key_index["autoencoder"] == ["shared", "autoencoder"]
    assert not (tmp_path / "p" / "key" / "autoencoder").exists()
    back = DiffusionPipeline.from_pretrained(tmp_path / "p")
    assert back.key_pipeline.autoencoder is back.autoencoder
    assert back.key_pipeline.guide_model is None  # only what is declared shared is shared
    with pytest.raises(ValueError, match="shared with the pipeline this folder belongs to"):
        DiffusionPipeline.from_pretrained(tmp_path / "p" / "key")
    with pytest.raises(ValueError, match="holds an autoencoder"):
        DiffusionPipeline.from_pretrained(tmp_path / "p" / "autoencoder")
    assert back.sample_shape(1, None) == pipe.sample_shape(1, None) == (1, 8, 5, 16, 16)
    for a, b in zip(pipe.model.state_dict().values(), back.model.state_dict().values()):
        assert torch.equal(a, b)


def test_output_sizes_come_from_the_model_config():
    pipe = VideoDiffusionPipeline.from_pretrained("vdm_tiny")
    pipe.experiment.data.moving_shapes.size = 999  # the data section is not consulted
    assert pipe.sample_shape(2, None) == (2, 3, 8, 32, 32)
    assert pipe.model.accepted_conditions == {"frame_groups"}


def test_vdm_tiny_demo_output_is_bit_identical_to_before_the_refactor():
    """sha256 of the shipped vdm_tiny's samples (seed 0, two clips, its own sampler settings:
    ancestral, 40 steps, autoguided), recorded at the commit before the architecture change."""
    pipe = VideoDiffusionPipeline.from_pretrained("vdm_tiny")
    v = pipe(num_videos=2, generator=torch.Generator().manual_seed(0), progress=False)
    assert v.shape == (2, 8, 32, 32, 3)
    assert hashlib.sha256(v.tobytes()).hexdigest()[:16] == "d771756f066d0922"


def test_task_pipelines_share_components_and_settings():
    from test_guidance import _tiny_pipe
    from vidiff.pipelines import LongVideoPipeline, VideoExtensionPipeline
    pipe = _tiny_pipe(0)
    pipe.diffusion.prediction, pipe.diffusion.clip = "x0", None
    ext = VideoExtensionPipeline.from_pipe(pipe)
    assert ext.model is pipe.model and ext.diffusion.prediction == "x0" and ext.diffusion.clip is None
    assert LongVideoPipeline.from_pipe(ext).schedule.num_steps == pipe.schedule.num_steps


def test_a_pipeline_moved_to_bfloat16_samples():
    from test_guidance import _tiny_pipe
    pipe = _tiny_pipe(0).to(dtype=torch.bfloat16)
    assert pipe.dtype == torch.bfloat16
    out = pipe(num_videos=1, num_inference_steps=2, sampler="ddim", output_type="pt",
               progress=False)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_a_pipeline_call_takes_a_per_frame_grid():
    from test_guidance import _tiny_pipe
    from test_sampler_grids import staggered_grid
    pipe = _tiny_pipe(0)  # 4 frames
    seen = []
    pipe(num_videos=1, sampler="ddim", timesteps=staggered_grid(3, 4, lag=1), progress=False,
         callback=lambda i, t, z, x0: seen.append(t))
    assert len(seen) == 6 and seen[0].shape == (1, 4) and seen[0][0].tolist()[1:] == [1.0] * 3
    with pytest.raises(ValueError, match="takes no time grid"):
        pipe(num_videos=1, sampler="ddpm", timesteps=staggered_grid(3, 4, lag=1))
