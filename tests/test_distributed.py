"""Distributed training: 2 gloo processes under torchrun train what one process trains.

Every comparison is against one process with the same global batch and seed. One step's
gradients agree to float rounding (~1e-6); whole runs are compared where training is not
chaotic: base training for two SGD steps (later on, a 1e-7 perturbation of the weights grows to
tens of percent within ten steps at lr 0.1 - measured, docs/METHOD.md), and the manifold from a
shared base (its initialisation takes an SVD, whose singular vectors flip with any change of the
base's bits).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from metaforge.checkpoint import load_manifold
from metaforge.data import load_dataset
from metaforge.errors import ConfigError
from metaforge.train.dist import Dist, from_env
from metaforge.train.loop import epoch_batches

TORCHRUN = Path(sys.executable).with_name("torchrun")
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed beside this Python")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "PYTHONPATH": f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


def _launch(nproc: int, args: list[str], cwd: Path) -> subprocess.Popen:
    """``torchrun --standalone`` (a free port of its own) with ``nproc`` processes, or plain python for 1."""
    head = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1 else [sys.executable]
    return subprocess.Popen([*head, *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def test_the_parts_of_all_ranks_are_exactly_the_single_process_batches():
    ds = dataclasses.replace(load_dataset("digits"), augment="shift-flip")  # random shifts and flips must split too
    whole = list(epoch_batches(ds, 32, 3, 1, 0, "cpu"))
    parts = [list(epoch_batches(ds, 32, 3, 1, 0, "cpu", (r, 4))) for r in range(4)]
    assert len(whole) == len(parts[0]) > 2
    for i, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([p[i][0] for p in parts]), x)
        assert torch.equal(torch.cat([p[i][1] for p in parts]), y)


def test_torchrun_environment_is_read_and_checked():
    assert from_env({}) is None
    assert from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Dist(1, 2, 1)
    with pytest.raises(ConfigError, match="outside WORLD_SIZE"):
        from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="RANK and WORLD_SIZE"):
        from_env({"RANK": "x", "WORLD_SIZE": "2"})


STEP_WORKER = r'''
import json, sys, torch, torch.distributed as dist
from torch import nn
from torch.func import functional_call
from metaforge.inr import INRConfig, Jitter, WeightINR
from metaforge.nets import ResNet
from metaforge.space import ArchConfig, make_space
from metaforge.train.dist import all_reduce_grads, current
from metaforge.train.syncbn import sync_batchnorm

dist.init_process_group("gloo")
d = current()
gen = torch.Generator().manual_seed(1)
x, y = torch.randn(16, 1, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
part = slice(d.rank * 8, d.rank * 8 + 8)
loss_fn, errors = nn.CrossEntropyLoss(), {}

def grads(module):
    return {n: p.grad for n, p in module.named_parameters()}

# base training: the full net with (synchronised) BatchNorm, one step's gradients and statistics
space = make_space("tiny", 1, 10, 8)
torch.manual_seed(0)
net = ResNet(space.full, 1, 10, "batch")
ref = ResNet(space.full, 1, 10, "batch")
ref.load_state_dict(net.state_dict())
sync_batchnorm(net)
loss_fn(net(x[part]), y[part]).backward()
all_reduce_grads(net.parameters(), d)
loss_fn(ref(x), y).backward()
floor = 1e-3 * float(torch.cat([g.reshape(-1) for g in grads(ref).values()]).norm())
errors["base"] = max(float((g - r).norm()) / max(float(r.norm()), floor) for g, r in zip(grads(net).values(), grads(ref).values()))
errors["running_var"] = float((net.stem.bn.running_var - ref.stem.bn.running_var).abs().max())

# manifold training: INR -> generated tensors -> functional_call through a narrower, shallower net
config = ArchConfig((4, 8, 16), (1, 2, 1))
inr = WeightINR(space, INRConfig(weight_grid=False), bn=True)
twin = WeightINR(space, INRConfig(weight_grid=False), bn=True)
twin.load_state_dict(inr.state_dict())
outs = []
for model, xs, ys, synced in ((inr, x[part], y[part], True), (twin, x, y, False)):
    train_net = ResNet(config, 1, 10, "batch-stateless")
    if synced:
        sync_batchnorm(train_net)
    params = model.generate(config, Jitter(torch.Generator().manual_seed(5)))
    loss_fn(functional_call(train_net, params, (xs,)), ys).backward()
all_reduce_grads(inr.parameters(), d)
a, b = grads(inr), grads(twin)
errors["same_unused"] = [n for n in a if (a[n] is None) != (b[n] is None)]
errors["unused"] = sum(g is None for g in b.values())
# per tensor, relative to its norm floored at 1e-3 of the whole gradient's: a bias that BatchNorm
# cancels has a true gradient of 0, and both processes return rounding noise of ~1e-9 for it
floor = 1e-3 * float(torch.cat([g.reshape(-1) for g in b.values() if g is not None]).norm())
errors["inr"] = max(float((a[n] - b[n]).norm()) / max(float(b[n].norm()), floor) for n in a if b[n] is not None)
if d.rank == 0:
    json.dump(errors, open(sys.argv[1], "w"))
dist.destroy_process_group()
'''


def test_one_distributed_step_has_the_gradients_of_one_process(tmp_path):
    """Averaged gradients and synchronised BatchNorm: 2 x 8 samples == 1 x 16, for both phases."""
    (tmp_path / "worker.py").write_text(STEP_WORKER)
    _finish(_launch(2, ["worker.py", "errors.json"], tmp_path))
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert errors["base"] < 1e-5 and errors["running_var"] < 1e-5, errors
    assert errors["inr"] < 1e-4, errors  # measured 3e-5: float32 rounding of cancelling sums
    assert errors["unused"] > 0 and errors["same_unused"] == [], errors  # unused INR slots stay grad=None


TRAIN = ["-m", "metaforge", "train", "--preset", "tiny", "--device", "cpu", "--limit", "64", "--batch-size", "64"]


def test_two_processes_train_the_same_base_and_manifold_as_one(tiny_run, tmp_path):
    base = str(tiny_run[0].with_name("tiny.run") / "base.safetensors")
    runs = {}
    for n in (1, 2):
        (tmp_path / f"n{n}").mkdir()
        runs[n] = (
            _launch(n, [*TRAIN, "--base-epochs", "2", "--epochs", "1", "--out", "b.safetensors"], tmp_path / f"n{n}"),
            # AdamW at 2e-3 (the MLP's rate too), the rate the bound below was measured at: Adam's first steps
            # move an element whose gradient is rounding noise by about +-lr either way, so the gap scales with it
            _launch(n, [*TRAIN, "--base", base, "--epochs", "4", "--lr", "2e-3", "--mlp-lr", "2e-3", "--out", "m.safetensors"],
                    tmp_path / f"n{n}"),
        )
    stdout = {n: [_finish(p) for p in procs] for n, procs in runs.items()}
    assert stdout[2][1].count("accuracy vs size") == 1  # rank 0 alone reports

    one, two = (load_file(tmp_path / f"n{n}" / "b.run" / "base.safetensors") for n in (1, 2))
    assert one.keys() == two.keys()
    base_err = max(_rel(two[k], one[k]) for k in one if one[k].is_floating_point())
    assert base_err < 1e-4, base_err  # measured 1.4e-6: two SGD steps, synchronised BatchNorm statistics

    m1, m2 = (load_manifold(tmp_path / f"n{n}" / "m.safetensors") for n in (1, 2))
    with torch.no_grad():
        for config in (m1.space.full, m1.space.scaled(0.5), m1.space.smallest):
            g1, g2 = m1.inr.generate(config), m2.inr.generate(config)
            err = max(_rel(g2[k], g1[k]) for k in g1)
            assert err < 5e-3, (config, err)  # measured 6.6e-4 after 4 AdamW steps
    for r1, r2 in zip(m1.info.accuracy, m2.info.accuracy):
        assert r1["config"] == r2["config"] and abs(r1["top1"] - r2["top1"]) <= 0.01, (r1, r2)


def test_batch_that_does_not_split_over_the_processes_is_refused(tmp_path):
    proc = _launch(2, [*TRAIN, "--batch-size", "63", "--base-epochs", "1", "--epochs", "1", "--out", "x.safetensors"], tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "does not split over 2 processes" in err
    assert not (tmp_path / "x.safetensors").exists()


def test_low_precision_needs_cuda(tmp_path):
    from metaforge.train.config import TrainConfig
    from metaforge.train.precision import Precision
    from metaforge.train.run import train

    with pytest.raises(ConfigError, match="needs a CUDA device"):
        train(TrainConfig(preset="tiny", device="cpu", precision="bf16", epochs=1, base_epochs=1), tmp_path / "m.safetensors")
    assert not (tmp_path / "m.run").exists()  # refused before any work
    with pytest.raises(ConfigError, match="unknown precision"):
        TrainConfig(precision="fp8")
    # the autocast and loss-scaling code itself, on the CPU (the CUDA path is the same calls)
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        prec = Precision(name, torch.device("cpu"), cuda_only=False)
        lin = torch.nn.Linear(4, 2)
        opt = torch.optim.SGD(lin.parameters(), lr=0.1)
        before = lin.weight.detach().clone()
        for skipped in range(30):  # fp16: steps whose scaled gradients overflow are skipped, the scale halves
            with prec.autocast():
                out = lin(torch.randn(3, 4))
            assert out.dtype == dtype
            opt.zero_grad()
            prec.backward(out.float().pow(2).mean())
            prec.unscale(opt)
            assert all(torch.isfinite(p.grad).all() for p in lin.parameters()) or name == "fp16"
            prec.step(opt)
            if not torch.equal(before, lin.weight):
                break
        assert not torch.equal(before, lin.weight)
        if name == "fp16":
            assert prec.state_dict()["scale"] == 65536.0 / 2**skipped  # what a resume restores


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_training_on_cuda(tmp_path):
    from metaforge.train.config import TrainConfig
    from metaforge.train.run import train

    manifold = train(TrainConfig(preset="tiny", device="cuda", precision="bf16", epochs=4, base_epochs=4), tmp_path / "m.safetensors")
    assert max(r["top1"] for r in manifold.info.accuracy) > 0.8
