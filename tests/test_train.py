"""Training on the embedded digits data: accuracy bars at seen and unseen sizes, and resume."""

import dataclasses

import pytest
import torch

from metaforge.data import load_dataset
from metaforge.evaluate import accuracy
from metaforge.errors import ConfigError
from metaforge.train.config import TrainConfig


def test_every_size_of_the_tiny_manifold_is_accurate(tiny_run):
    _, manifold, _ = tiny_run
    rows = manifold.info.accuracy
    assert {r["seen"] for r in rows} == {True, False}
    quarter_and_up = [r for r in rows if r["flops_frac"] >= 0.24]
    assert len(quarter_and_up) >= 6
    worst = min(r["top1"] for r in quarter_and_up)
    assert worst >= 0.88, rows
    full = next(r for r in rows if r["flops_frac"] == 1.0)
    assert full["top1"] >= 0.93, rows


def test_the_manifold_records_what_its_evaluation_after_training_cost(tiny_run):
    path, manifold, _ = tiny_run
    from metaforge.checkpoint import load_manifold

    tc = load_manifold(path).info.train_config
    assert 0 < tc["evaluation_wall_s"] < tc["wall_time_s"]  # the size table and the survey, a part of the run
    assert tc["evaluation_user_cpu_s"] > 0


def test_materialised_network_is_plain_and_as_accurate_as_the_table(tiny_run):
    _, manifold, _ = tiny_run
    ds = load_dataset("digits")
    row = manifold.info.accuracy[2]
    net = manifold.materialize(row["config"])
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert abs(accuracy(net, ds.test, ds.norm) - row["top1"]) < 1e-4  # the table rounds to 4 places


def test_unseen_config_between_and_below_seen_widths_materialises(tiny_run):
    _, manifold, _ = tiny_run
    space = manifold.space
    assert manifold.default_samples(space.smallest) == manifold.info.samples > 1  # below: box filter
    assert manifold.default_samples(space.scaled(0.625)) == 1  # between seen widths: cell centres
    for config in (space.smallest, space.scaled(0.625)):
        assert not manifold.is_seen(config)
        out = manifold.materialize(config)(torch.randn(2, 1, 8, 8))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny_run, tmp_path, crash_at):
    """Stop a run mid-way (as a crash would), resume it, and compare with the session's run."""
    from metaforge.train.run import resume_run, train

    path, reference, cfg = tiny_run
    base = path.with_name("tiny.run") / "base.safetensors"  # same weights: skip base training

    CrashAt, Crash = crash_at
    out = tmp_path / "m.safetensors"
    cfg = dataclasses.replace(cfg, save_every=5, base_path=str(base))
    with pytest.raises(Crash):
        train(cfg, out, progress=CrashAt("manifold", 47))
    assert not out.exists()  # nothing half-written
    resumed = resume_run(out.with_name("m.run"))
    assert out.exists()
    written = out.stat().st_mtime_ns
    again = resume_run(out.with_name("m.run"))  # a finished run: loaded, not retrained
    assert out.stat().st_mtime_ns == written and again.info.accuracy == resumed.info.accuracy
    x = torch.randn(8, 1, 8, 8)
    for config in (resumed.space.full, resumed.space.smallest):
        torch.testing.assert_close(resumed.materialize(config)(x), reference.materialize(config)(x), atol=1e-4, rtol=1e-4)


def test_bad_training_settings_are_config_errors():
    with pytest.raises(ConfigError, match="BN mode"):
        TrainConfig(bn_mode="magic")
    with pytest.raises(ConfigError, match="--epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="--mlp-lr must be positive"):
        TrainConfig(mlp_lr=-1e-3)


def test_weight_grids_and_the_mlp_learn_at_their_own_rates(tiny_run):
    """The grids (the network's own weights) at --lr; the MLP, whose every change moves all sizes, slower."""
    from metaforge.train.loop import cosine_lr, set_lr
    from metaforge.train.single import param_groups

    _, manifold, cfg = tiny_run
    inr = manifold.inr
    groups = param_groups(inr, dataclasses.replace(cfg, lr=0.03, mlp_lr=0.002))
    opt = torch.optim.AdamW(groups, lr=0.03)
    set_lr(opt, cosine_lr(10**6, 1, 0.03))  # past the end: zero everywhere
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.0]
    set_lr(opt, 0.03)
    rest, grids = opt.param_groups
    assert (rest["lr"], grids["lr"]) == (pytest.approx(0.002), 0.03)
    assert {id(p) for p in grids["params"]} == {id(p) for p in inr.grid_parameters()}
    assert len(rest["params"]) + len(grids["params"]) == len(list(inr.parameters()))
    assert sum(p.numel() for p in grids["params"]) > 0.75 * sum(p.numel() for p in inr.parameters())  # most of the INR
    same = param_groups(inr, dataclasses.replace(cfg, lr=0.03, mlp_lr=None))
    assert same[0]["lr_scale"] == same[1]["lr_scale"] == 1.0


def test_resuming_a_run_of_the_one_rate_optimiser_is_refused_clearly(tiny_run, tmp_path):
    """A run folder written before the grids got their own rate holds one optimiser group."""
    from metaforge.errors import CheckpointError
    from metaforge.progress import Progress
    from metaforge.train.run import resume_run, train
    from metaforge.train.state import load_state, save_state

    class Stop(Exception):
        pass

    class StopInManifold(Progress):
        def phase(self, name, total, done=0):
            self.current = name

        n = 0

        def advance(self, steps=1, **metrics):
            if self.current == "manifold":
                self.n += steps
                if self.n >= 3:  # two steps are saved (--save-every 1)
                    raise Stop

    path, _, cfg = tiny_run
    out = tmp_path / "m.safetensors"
    cfg = dataclasses.replace(cfg, save_every=1, epochs=2, base_path=str(path.with_name("tiny.run") / "base.safetensors"))
    with pytest.raises(Stop):
        train(cfg, out, progress=StopInManifold())
    run_dir = out.with_name("m.run")
    state = load_state(run_dir)
    assert state["phase"] == "manifold" and len(state["opt"]["param_groups"]) == 2
    old = state["opt"]["param_groups"]
    state["opt"]["param_groups"] = [{**old[0], "params": old[0]["params"] + old[1]["params"]}]
    save_state(run_dir, {k: v for k, v in state.items() if k != "version"})
    with pytest.raises(CheckpointError, match="older metaforge"):
        resume_run(run_dir)
    assert not out.exists()


def test_fold_mode_starts_exactly_at_the_smoothed_base_network(tiny_run):
    """NeuMeta's BN folding: before training, the full size is the (folded, permuted) base network."""
    from metaforge.manifold import Manifold
    from metaforge.model_io import load_model
    from metaforge.progress import Progress
    from metaforge.train.init import ground_truth, init_inr

    path, trained, cfg = tiny_run
    base, _ = load_model(path.with_name("tiny.run") / "base.safetensors")
    fold_cfg = dataclasses.replace(cfg, bn_mode="fold")
    truth = ground_truth(fold_cfg, base)
    inr, error = init_inr(fold_cfg, trained.space, truth, "cpu", Progress())
    assert error < 1e-8
    manifold = Manifold(inr, dataclasses.replace(trained.info, bn_mode="fold"), calibration=None)
    x = torch.randn(16, 1, 8, 8)
    exact = manifold.materialize(trained.space.full, samples=1)  # cell centres: no jitter
    torch.testing.assert_close(exact(x), base(x), atol=1e-4, rtol=1e-4)


def test_base_of_another_shape_is_rejected(tiny_run, tmp_path):
    from metaforge.train.run import train

    path, _, cfg = tiny_run
    base = path.with_name("tiny.run") / "base.safetensors"
    with pytest.raises(ConfigError, match="needs 'w=16,32,64 d=3,3,3'"):
        train(dataclasses.replace(cfg, preset="resnet20", base_path=str(base)), tmp_path / "x.safetensors")


def test_distillation_from_the_base_network_trains(tiny_run, tmp_path):
    """--distill 1: the task loss is only the KL to the base network; sizes still learn."""
    from metaforge.train.run import train

    path, _, cfg = tiny_run
    base = path.with_name("tiny.run") / "base.safetensors"
    manifold = train(dataclasses.replace(cfg, distill=1.0, epochs=4, base_path=str(base)), tmp_path / "kd.safetensors")
    rows = {r["config"]: r["top1"] for r in manifold.info.accuracy}
    assert rows["w=8,16,32 d=2,2,2"] >= 0.9 and rows["w=6,12,24 d=2,2,2"] >= 0.8, rows
    with pytest.raises(ConfigError, match="--distill"):
        TrainConfig(distill=1.5)
