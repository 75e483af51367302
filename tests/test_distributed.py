"""FSDP2 on two CPU processes (gloo, through torchrun): it trains, its checkpoints hold full
tensors, it follows the DDP run of the same seed to float tolerance, and its checkpoint resumes
in one plain process."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from test_training import ROOT, TINY, tiny
from vidiff.models import load_model
from vidiff.models.modeling import build_model
from vidiff.training import Trainer, latest_checkpoint

RUN = ["train.steps=4", "train.ckpt_every=2", "train.grad_accum=2", "train.log_every=1"]


def torchrun(out, port: int, *extra: str) -> None:
    """``vidiff train`` of the tiny config (4 steps of 2 micro-batches) on two CPU processes."""
    sets = TINY + [f"train.out_dir={out}", *RUN, *extra]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={port}", "-m", "vidiff.cli", "train",
           str(ROOT / "configs" / "vdm_tiny.yaml"), *sum([["--set", s] for s in sets], [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]


def log_column(out, name: str) -> list[float]:
    with open(out / "log.csv", newline="") as fh:
        return [float(row[name]) for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    """The output folder of one FSDP run (shared by the tests below; they only read it)."""
    out = tmp_path_factory.mktemp("fsdp")
    torchrun(out, 29541, "train.distributed=fsdp")
    return out


@pytest.mark.slow
def test_fsdp_two_cpu_processes_saves_full_tensors(fsdp_run):
    ck = latest_checkpoint(fsdp_run / "checkpoints")
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["world_size"] == 2
    assert len(log_column(fsdp_run, "loss")) == 4
    ref = build_model(tiny(fsdp_run).model)  # the same model, built in this one process
    shapes = {k: v.shape for k, v in ref.state_dict().items()}
    ema = load_model(ck)  # the EMA weights, unsharded: they load into a one-process model
    assert {k: v.shape for k, v in ema.state_dict().items()} == shapes
    assert {k: v.shape for k, v in load_file(str(ck / "raw.safetensors")).items()} == shapes
    moments = load_file(str(ck / "optimizer.safetensors"))
    for i, p in enumerate(ref.parameters()):
        assert moments[f"{i}.exp_avg"].shape == moments[f"{i}.exp_avg_sq"].shape == p.shape


@pytest.mark.slow
def test_fsdp_follows_ddp(fsdp_run, tmp_path):
    """The same math, summed in another order: FSDP2 puts an autograd node on each shard
    group's inputs, which regroups the sum of a skip connection's gradients (differences of
    ~1e-13). Adam turns the rounding noise of gradients that are zero in exact arithmetic
    (conv biases before a GroupNorm) into steps of the learning rate's size, so single tensors
    may differ by up to ~lr; losses, gradient norms and the weights as a whole agree closely."""
    torchrun(tmp_path, 29542, "train.distributed=ddp")
    for col, rel in (("loss", 1e-4), ("grad_norm", 1e-3)):
        assert log_column(fsdp_run, col) == pytest.approx(log_column(tmp_path, col), rel=rel)
    ck_f = latest_checkpoint(fsdp_run / "checkpoints")
    ck_d = latest_checkpoint(tmp_path / "checkpoints")
    for name in ("raw", "model"):
        f = load_file(str(ck_f / f"{name}.safetensors"))
        d = load_file(str(ck_d / f"{name}.safetensors"))
        assert f.keys() == d.keys()
        diff = torch.cat([(f[k].float() - d[k].float()).flatten() for k in d])
        ref = torch.cat([d[k].float().flatten() for k in d])
        assert diff.norm() < 2e-3 * ref.norm(), (name, (diff.norm() / ref.norm()).item())


@pytest.fixture
def one_thread():
    """One intra-op thread (restored after): two OpenMP threads on two busy cores can spin-wait
    a step of this tiny model from 0.1 s to 8 s."""
    n = torch.get_num_threads()
    yield "train.num_threads=1"
    torch.set_num_threads(n)


@pytest.mark.slow
def test_fsdp_checkpoint_resumes_in_one_process(fsdp_run, tmp_path, one_thread):
    """One process with twice the accumulation takes the same samples per step as the two
    FSDP ranks (4 x 2 x 2 = 4 x 4 x 1), so it resumes the run."""
    shutil.copytree(fsdp_run / "checkpoints", tmp_path / "checkpoints")
    ck = latest_checkpoint(tmp_path / "checkpoints")
    one = [*RUN, one_thread, "train.grad_accum=4"]
    tr = Trainer(tiny(tmp_path, *one))
    assert tr.world == 1 and tr.resume()
    assert tr.step == 4
    raw, ema = load_file(str(ck / "raw.safetensors")), load_file(str(ck / "model.safetensors"))
    moments = load_file(str(ck / "optimizer.safetensors"))
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, raw[k]) and torch.equal(tr.ema.shadow[k], ema[k].float()), k
    for i, p in enumerate(tr.model.parameters()):
        st = tr.opt.state[p]
        assert int(st["step"]) == 4
        assert torch.equal(st["exp_avg_sq"], moments[f"{i}.exp_avg_sq"])
    res = Trainer(tiny(tmp_path, *one)).fit(steps=6)  # a new trainer resumes itself
    assert res.steps == 6 and len(res.losses) == 2
    assert all(torch.isfinite(torch.tensor(res.losses)))
    last = latest_checkpoint(tmp_path / "checkpoints")
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["world_size"] == 1
