"""Values out of range are one-line errors where they enter (recipe, --set, command-line options,
sampler options), before any work starts, naming the field, the value and the allowed range."""

import argparse
import dataclasses
import typing
from pathlib import Path

import pytest

from vidiff.cli import build_parser, main
from vidiff.config import ConfigError, ExperimentConfig, from_dict, load_config
from vidiff.data.moving_shapes import MovingShapesConfig
from vidiff.diffusion.masks import FrameMaskConfig
from vidiff.diffusion.schedules import ScheduleConfig
from vidiff.models.unet3d import UNet3DConfig
from vidiff.models.video_ae import VideoAutoencoderConfig
from vidiff.registry import SAMPLERS
from vidiff.training.tasks.autoencoder import AutoencoderLossConfig

ROOT = Path(__file__).resolve().parents[1]
VDM = str(ROOT / "configs" / "vdm_tiny.yaml")


def argparse_error(capsys, args: list[str]) -> str:
    """The one error line argparse printed for ``vidiff args`` (exit status 2)."""
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0] == err.strip().splitlines()[-1]
    return lines[0]


def cli_error(capsys, args: list[str]) -> str:
    """The one line ``vidiff: error: ...`` of a command that returned 2."""
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# -- the examples of the issue ----------------------------------------------------------------
@pytest.mark.parametrize("command,flag,value,allowed", [
    (["sample", "x"], "--eta", "-1", "in [0, 1]"),
    (["sample", "x"], "--eta", "5", "in [0, 1]"),
    (["sample", "x"], "--fps", "0", "in [0.001, 1000]"),
    (["sample", "x"], "--fps", "-8", "in [0.001, 1000]"),
    (["sample", "x"], "--fps", "1e12", "in [0.001, 1000]"),
    (["eval", "real"], "--num-frames", "0", ">= 1"),
    (["long", "x"], "--context", "0", ">= 1"),
    (["long", "x"], "--stride", "0", ">= 1"),
])
def test_issue_examples_on_the_command_line(command, flag, value, allowed, capsys):
    line = argparse_error(capsys, [*command, flag, value])
    assert line == (f"vidiff {command[0]}: error: argument {flag}: {flag} must be {allowed}, "
                    f"got {value}")


@pytest.mark.parametrize("override,line", [
    ("model.channel_mult=2", "vidiff: error: config.model.channel_mult: expected a list, got 2"),
    ("train.batch_size=0", "vidiff: error: config.train.batch_size must be >= 1, got 0"),
])
def test_issue_examples_in_the_recipe(override, line, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_error(capsys, ["train", VDM, "--set", f"train.out_dir={out}", "--set",
                              override]) == line
    assert not out.exists()  # before any work started


def test_pipeline_checks_sampler_options_before_sampling():
    from vidiff.pipelines import VideoDiffusionPipeline

    pipe = VideoDiffusionPipeline.from_pretrained("vdm_tiny")

    def boom(*a, **k):
        raise AssertionError("sampling started")

    pipe.model.forward = boom
    cases = [({"sampler": "ddim", "eta": 5},
              "sampler 'ddim' option eta must be in [0, 1], got 5"),
             ({"sampler": "ddim", "eta": -1},
              "sampler 'ddim' option eta must be in [0, 1], got -1"),
             ({"sampler": "pc", "delta": 0}, "sampler 'pc' option delta must be > 0, got 0"),
             ({"sampler": "pc", "corrector_steps": -1},
              "sampler 'pc' option corrector_steps must be >= 0, got -1"),
             ({"sampler": "pc", "corrector_steps": 1.5},
              "sampler 'pc' option corrector_steps must be an integer, got 1.5"),
             ({"sampler": "ancestral", "gamma": 2},
              "sampler 'ancestral' option gamma must be in [0, 1], got 2"),
             ({"sampler": "ddpm", "gamma": float("nan")},
              "sampler 'ddpm' option gamma must be in [0, 1], got nan"),
             ({"sampler": "ddim", "eta": "x"},
              "sampler 'ddim' option eta must be a number, got 'x'")]
    for kw, msg in cases:
        with pytest.raises(ValueError) as e:
            pipe(num_videos=1, num_inference_steps=2, **kw)
        assert str(e.value) == msg


def test_sample_opt_out_of_range_is_one_line(tmp_path, capsys):
    err = cli_error(capsys, ["sample", "vdm_tiny", "--sampler", "pc", "--opt", "delta=0",
                             "--steps", "1", "--out", str(tmp_path / "x.mp4")])
    assert err == "vidiff: error: sampler 'pc' option delta must be > 0, got 0.0"
    assert not (tmp_path / "x.mp4").exists()


# -- siblings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args,tail", [
    (["sample", "x", "--guidance-scale", "-1"], "--guidance-scale must be >= 0, got -1"),
    (["sample", "x", "--autoguidance-scale", "-0.5"],
     "--autoguidance-scale must be >= 0, got -0.5"),
    (["sample", "x", "--autoguidance-interval", "0.5", "2"],
     "--autoguidance-interval must be in [0, 1], got 2"),
    (["sample", "x", "--steps", "0"], "--steps must be >= 1, got 0"),
    (["sample", "x", "--num-frames", "1.5"], "--num-frames must be an integer, got '1.5'"),
    (["sample", "x", "--fps", "nan"], "--fps must be in [0.001, 1000], got nan"),
    (["sample", "x", "--fps", "inf"], "--fps must be in [0.001, 1000], got inf"),
    (["sample", "x", "--class-label", "one"], "--class-label must be an integer, got 'one'"),
    (["eval", "real", "--seed", "-3"], "--seed must be in [0, 9e18], got -3"),
    (["sample", "x", "--seed", "99999999999999999999999"],
     "--seed must be in [0, 9e18], got 99999999999999999999999"),
    (["eval", "real", "--size", "0"], "--size must be >= 1, got 0"),
    (["eval", "real", "--max-objects", "0"], "--max-objects must be >= 1, got 0"),
    (["long", "x", "--cond-t", "1.5"], "--cond-t must be in [0, 1], got 1.5"),
    (["long", "x", "--uncond-weight", "-1"], "--uncond-weight must be >= 0, got -1"),
    (["long", "x", "--fps", "0"], "--fps must be in [0.001, 1000], got 0"),
    (["train", VDM, "--steps", "0"], "--steps must be >= 1, got 0"),
    (["export", "x", "--out", "y", "--guidance-scale", "-2"],
     "--guidance-scale must be >= 0, got -2"),
    (["encode-latents", "x", "--out", "y", "--threads", "0"], "--threads must be in [1, 1024], got 0"),
    (["encode-latents", "x", "--out", "y", "--min-objects", "-1"],
     "--min-objects must be >= 0, got -1"),
    (["autoencode", "x", "--checkpoint", "c", "--max-frames", "0"],
     "--max-frames must be >= 1, got 0"),
    (["demo", "--num-videos", "0"], "--num-videos must be >= 1, got 0"),
])
def test_sibling_options(args, tail, capsys):
    assert argparse_error(capsys, args).endswith(f": {tail}")


def test_encode_latents_object_counts(tmp_path, capsys):
    err = cli_error(capsys, ["encode-latents", "x", "--out", str(tmp_path / "z.safetensors"),
                             "--min-objects", "3", "--max-objects", "2"])
    assert err == "vidiff: error: --min-objects must be <= --max-objects (2), got 3"


@pytest.mark.parametrize("override,msg", [
    ("sample.guidance_scale=-1", "config.sample.guidance_scale must be >= 0, got -1"),
    ("sample.eta=5", "config.sample.eta must be in [0, 1], got 5"),
    ("sample.fps=0", "config.sample.fps must be in [0.001, 1000], got 0"),
    ("sample.steps=0", "config.sample.steps must be >= 1, got 0"),
    ("sample.autoguidance_interval=[0.5, 2]", "config.sample.autoguidance_interval[1] must be "
                                              "in [0, 1], got 2.0"),
    ("train.steps=0", "config.train.steps must be >= 1, got 0"),
    ("train.lr=0", "config.train.lr must be > 0, got 0"),
    ("train.lr=-3e-4", "config.train.lr must be > 0, got -0.0003"),
    ("train.ema_decay=1.5", "config.train.ema_decay must be in [0, 1], got 1.5"),
    ("train.betas=[0.9, 1.0]", "config.train.betas[1] must be in [0, 1), got 1.0"),
    ("train.grad_accum=0", "config.train.grad_accum must be >= 1, got 0"),
    ("train.seed=-1", "config.train.seed must be in [0, 9e18], got -1"),
    ("data.num_frames=0", "config.data.num_frames must be >= 1, got 0"),
    ("data.moving_shapes.min_objects=4", "config.data.moving_shapes.min_objects must be <= "
                                         "max_objects (2), got 4"),
    ("data.moving_shapes.max_scale=0.7", "config.data.moving_shapes.max_scale must be in "
                                         "(0, 0.5], got 0.7"),
    ("diffusion.cond_drop_prob=1.5", "config.diffusion.cond_drop_prob must be in [0, 1], got 1.5"),
    ("diffusion.clip=.nan", "config.diffusion.clip must be > 0, got nan"),
    ("diffusion.schedule.num_steps=0", "config.diffusion.schedule.num_steps must be >= 1, got 0"),
    ("diffusion.schedule.logsnr_min=30", "config.diffusion.schedule.logsnr_min must be < "
                                         "logsnr_max (20.0), got 30.0"),
    ("diffusion.frame_masks.sparse_stride=1", "config.diffusion.frame_masks.sparse_stride must be "
                                              ">= 2, got 1"),
    ("diffusion.frame_masks.prefix=-0.5", "config.diffusion.frame_masks.prefix must be >= 0, "
                                          "got -0.5"),
    ("model.channel_mult=[1, 0]", "config.model.channel_mult[1] must be >= 1, got 0"),
    ("model.dropout=1", "config.model.dropout must be in [0, 1), got 1"),
    ("model.num_classes=0", "config.model.num_classes must be >= 1, got 0"),
    ("model.model_channels=many", "config.model.model_channels: expected an integer, got 'many'"),
])
def test_sibling_config_fields(override, msg):
    with pytest.raises(ConfigError) as e:
        load_config(VDM, [override])
    assert str(e.value) == msg


def test_autoencoder_recipe_fields():
    ae = ROOT / "configs" / "lvdm_ae_tiny.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(ae, ["autoencoder_loss.disc_lr=0"])
    assert str(e.value) == "config.autoencoder_loss.disc_lr must be > 0, got 0"
    with pytest.raises(ConfigError) as e:
        load_config(ae, ["model.scale_factor=-1"])
    assert str(e.value) == "config.model.scale_factor must be > 0, got -1"


def test_valid_values_are_kept():
    cfg = load_config(VDM, ["model.dropout=1e-1", "train.lr=3e-4", "model.channel_mult=[1, 2]"])
    assert cfg.model["dropout"] == 0.1 and cfg.model["channel_mult"] == [1, 2]
    assert cfg.train.lr == 3e-4
    for recipe in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(recipe)


def test_shipped_checkpoints_still_load():
    from vidiff.pipelines import VideoDiffusionPipeline

    for name in ("vdm_tiny", "lvdm_tiny"):
        assert VideoDiffusionPipeline.from_pretrained(name).experiment.sample.steps >= 1


# -- every numeric setting declares its range ---------------------------------------------------
CONFIG_CLASSES = [ExperimentConfig, MovingShapesConfig, FrameMaskConfig, ScheduleConfig,
                  UNet3DConfig, VideoAutoencoderConfig, AutoencoderLossConfig]


def _numeric(tp) -> bool:
    args = typing.get_args(tp)
    return tp in (int, float) or any(_numeric(a) for a in args if a is not Ellipsis)


def _config_classes():
    seen, todo = [], list(CONFIG_CLASSES)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        todo += [t for t in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(t)]
    return seen


@pytest.mark.parametrize("cls", _config_classes(), ids=lambda c: c.__name__)
def test_every_numeric_field_declares_a_range_its_default_meets(cls):
    hints = typing.get_type_hints(cls)
    bare = [f.name for f in dataclasses.fields(cls) if _numeric(hints[f.name])
            and not {"range", "lt", "le"} & set(f.metadata)]
    assert bare == [], f"{cls.__name__}: numeric fields without a declared range"
    from_dict(cls, {}, cls.__name__)  # the defaults are in range


def test_every_numeric_option_is_range_checked():
    bare = []
    for cmd, sub in _subparsers(build_parser()).items():
        bare += [f"{cmd} {a.option_strings or a.dest}" for a in sub._actions
                 if a.type in (int, float)]
    assert bare == []


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_numeric_sampler_option_declares_a_range():
    from vidiff.diffusion import sampler_options

    for name in SAMPLERS:
        ranges = getattr(SAMPLERS.get(name), "option_ranges", {})
        numeric = [k for k, v in sampler_options(name).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert sorted(numeric) == sorted(k for k in numeric if k in ranges), name
