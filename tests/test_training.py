"""End-to-end training on a tiny config: loss goes down, resume is exact, checkpoints are
atomic, DDP runs on two CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidiff.config import load_config
from vidiff.models import UNet3D
from vidiff.training import Trainer, latest_checkpoint

TINY = [
    "model.model_channels=8", "model.channel_mult=[1, 2]", "model.num_res_blocks=1",
    "model.attention_levels=[1]", "model.temporal_attention_levels=[1]", "model.head_channels=8",
    "data.moving_shapes.size=16", "data.moving_shapes.num_frames=4",
    "data.moving_shapes.max_objects=1", "train.batch_size=4", "train.warmup_steps=5",
    "train.lr=3e-3", "train.log_every=5", "train.progress=false", "train.tensorboard=false",
]


ROOT = Path(__file__).resolve().parents[1]


def tiny(tmp_path, *extra):
    return load_config(ROOT / "configs" / "vdm_tiny.yaml", TINY + [f"train.out_dir={tmp_path}", *extra])


def test_loss_goes_down(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.steps=60", "train.ckpt_every=1000"))
    res = tr.fit()
    first, last = sum(res.losses[:10]) / 10, sum(res.losses[-10:]) / 10
    assert last < 0.6 * first, (first, last)
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss,grad_norm,lr,steps_per_s") and len(log) == 13


def test_resume_is_exact(tmp_path):
    a = Trainer(tiny(tmp_path / "a", "train.steps=8", "train.ckpt_every=4"))
    ra = a.fit()
    b1 = Trainer(tiny(tmp_path / "b", "train.steps=8", "train.ckpt_every=4"))
    rb1 = b1.fit(steps=4)
    b2 = Trainer(tiny(tmp_path / "b", "train.steps=8", "train.ckpt_every=4"))  # a new process
    rb2 = b2.fit()
    assert b2.step == 8
    assert ra.losses == rb1.losses + rb2.losses
    for (k, v1), v2 in zip(a.model.state_dict().items(), b2.model.state_dict().values()):
        assert torch.equal(v1, v2), k
    for k in a.ema.shadow:
        assert torch.equal(a.ema.shadow[k], b2.ema.shadow[k])


def test_grad_accumulation_and_joint_images(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.steps=2", "train.grad_accum=2", "data.joint_images=2",
                      "train.ckpt_every=1000"))
    b = tr.batch(0)
    assert b["video"].shape == (4, 3, 6, 16, 16)
    assert b["frame_groups"].tolist()[0] == [0, 0, 0, 0, 1, 2]
    res = tr.fit()
    assert res.steps == 2 and all(torch.isfinite(torch.tensor(res.losses)))


def test_kill_mid_write_keeps_latest_whole(tmp_path, monkeypatch):
    tr = Trainer(tiny(tmp_path, "train.steps=4", "train.ckpt_every=2"))
    tr.fit(steps=2)
    good = latest_checkpoint(tmp_path / "checkpoints")
    assert good.name == "step_000002"
    import vidiff.training.checkpoint as ck

    def boom(*a, **k):
        raise KeyboardInterrupt("killed while writing")
    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        tr.fit(steps=4)
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path / "checkpoints") == good  # still the whole one
    again = Trainer(tiny(tmp_path, "train.steps=4", "train.ckpt_every=2"))
    assert again.resume() and again.step == 2
    again.fit()
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step_000004"
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_class_conditional_training_with_dropout(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.steps=3", "model.num_classes=7",
                      "data.label=first_color", "train.ckpt_every=1000"))
    res = tr.fit()
    assert res.steps == 3


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port=29531", "-m", "vidiff.cli", "train", str(ROOT / "configs" / "vdm_tiny.yaml"),
           *sum([["--set", s] for s in TINY + [f"train.out_dir={tmp_path}", "train.steps=4",
                                                 "train.ckpt_every=2"]], [])]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = latest_checkpoint(tmp_path / "checkpoints")
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["world_size"] == 2
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 // 5 + 1  # header, final row (log_every=5)


def test_trains_on_a_folder_of_real_videos(tmp_path, real_dir):
    tr = Trainer(tiny(tmp_path, "data.kind=video_folder", f"data.path={real_dir}", "data.size=16",
                      "data.num_frames=4", "data.frame_stride=2", "train.steps=2",
                      "train.ckpt_every=1000"))
    res = tr.fit()
    assert res.steps == 2 and all(torch.isfinite(torch.tensor(res.losses)))


def test_init_from_fine_tunes_with_a_new_class_embedding(tmp_path):
    """train.init_from copies every matching weight (the EMA ones); a new zero-initialised class
    embedding makes the fine-tuned model start exactly where the source model was."""
    from safetensors.torch import load_file
    src = Trainer(tiny(tmp_path / "src", "train.steps=2", "train.ckpt_every=2")).fit()
    tr = Trainer(tiny(tmp_path / "ft", "train.steps=1", f"train.init_from={tmp_path / 'src'}",
                      "model.num_classes=2", "data.label=num_objects"))
    assert tr.init_report["new"] == ["class_embed.weight"] and not tr.init_report["unused"]
    ema = load_file(str(src.checkpoint / "model.safetensors"))
    for k, v in tr.model.state_dict().items():
        if k != "class_embed.weight":
            assert torch.equal(v, ema[k]), k
    x, t = torch.randn(2, 3, 4, 16, 16), torch.rand(2)
    ref = UNet3D.from_pretrained(src.checkpoint).eval()
    with torch.no_grad():
        assert torch.allclose(tr.model.eval()(x, t, class_labels=torch.tensor([0, 1])),
                              ref(x, t), atol=1e-6)
    # a class-conditional checkpoint is evaluated with labels drawn for it, guided, and each
    # clip held to the object count its label asks for
    res = tr.fit()
    from vidiff.cli import main
    report = tmp_path / "eval.json"
    assert main(["eval", str(res.checkpoint), "--num-videos", "4", "--steps", "2",
                 "--guidance-scale", "2", "--json", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["guidance_scale"] == 2.0 and r["num_videos"] == 4
    from vidiff.models.video_ae import VideoAutoencoder, VideoAutoencoderConfig
    VideoAutoencoder(VideoAutoencoderConfig(base_channels=8)).save_pretrained(tmp_path / "ae")
    with pytest.raises(ValueError, match="no weight matches"):
        Trainer(tiny(tmp_path / "bad", "train.steps=1", f"train.init_from={tmp_path / 'ae'}"))


def test_shipped_checkpoints_resolve_by_name(tmp_path, monkeypatch):
    """A shipped checkpoint's name works where a path does, unless a local path of that name
    exists; an unknown path's error lists the shipped names."""
    from vidiff.training.checkpoint import resolve_checkpoint, shipped_checkpoints
    shipped = shipped_checkpoints()
    assert "vdm_tiny" in shipped
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("vdm_tiny") == shipped["vdm_tiny"]
    (tmp_path / "vdm_tiny").mkdir()
    with pytest.raises(FileNotFoundError, match="shipped checkpoints: .*vdm_tiny"):
        resolve_checkpoint("vdm_tiny")
