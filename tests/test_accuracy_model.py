"""The accuracy model stored in the manifold: it round-trips, predicts with uncertainty, and fit
confirms its predictions by real evaluation; older manifolds fall back, damaged records are refused."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from metaforge.accuracy_model import AccuracyModel, AccuracyModelConfig
from metaforge.accuracy_survey import attach_accuracy_model, measure_accuracy_model, plan_configs
from metaforge.checkpoint import load_manifold
from metaforge.errors import CheckpointError
from metaforge.evaluate import accuracy
from metaforge.fit import fit, shapes
from metaforge.fit.document import FitDocument, FitEntry
from metaforge.fit.search import _Genes
from metaforge.progress import Progress
from metaforge.space import ArchConfig


def fake_latency(layers):
    """A deterministic stand-in for a device: 10 us per MFLOP plus 1 us per layer."""
    return 2 * shapes.macs(layers) / 1e6 * 0.01 + 0.001 * len(layers), "fake"


class Lines(Progress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def random_configs(space, n: int, seed: int = 0) -> list[ArchConfig]:
    genes = _Genes(space, random.Random(seed))
    return [genes.random() for _ in range(n)]


def rewrite(src, dst, edit) -> None:
    """A copy of the manifold ``src`` whose header went through ``edit(meta)``."""
    with safe_open(str(src), framework="pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    edit(meta)
    save_file(tensors, str(dst), metadata=meta)


@pytest.fixture()
def copy(tiny_run, tmp_path):
    """The session's tiny manifold copied, so each test starts without an accuracy cache beside it."""
    dst = tmp_path / "m.safetensors"
    shutil.copy(tiny_run[0], dst)
    return dst


def test_the_stored_model_round_trips_with_equal_predictions(tiny_run):
    path, trained, _ = tiny_run
    loaded = load_manifold(path)
    assert trained.accuracy_record is not None and loaded.accuracy_record == trained.accuracy_record
    configs = random_configs(loaded.space, 64)
    a = AccuracyModel.from_record(trained.accuracy_record, trained.space).predict(configs)
    b = AccuracyModel.from_record(loaded.accuracy_record, loaded.space).predict(configs)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    header = json.loads(dict(safe_open(str(path), framework="numpy").metadata())["accuracy_model"])
    assert header["schema"] == "metaforge-accuracy-model/1" and "pickle" not in json.dumps(header)
    assert set(header) >= {"configs", "accuracy", "images", "kernel", "held_out"}


def test_predictions_carry_uncertainty(tiny_run):
    _, m, _ = tiny_run
    rec = m.accuracy_record
    model = AccuracyModel.from_record(rec, m.space)
    configs = random_configs(m.space, 200, seed=1)
    mean, std = model.predict(configs)
    assert np.isfinite(mean).all() and (std > 0).all() and np.isfinite(std).all()
    floor = np.sqrt(np.clip(mean, 0.01, 0.99) * (1 - np.clip(mean, 0.01, 0.99)) / rec.images) * 0.5
    assert (std >= floor).all()  # never surer than the validation split's own sampling noise
    # At the measured points the model agrees with the measurements within their uncertainty.
    mean, std = model.predict(list(rec.configs))
    err = np.abs(mean - np.array(rec.accuracy))
    assert (err <= 3 * std).mean() >= 0.9
    assert 0 <= rec.loo_mae <= 0.2 and rec.loo_rmse >= rec.loo_mae


def test_the_design_fills_the_space_deterministically(tiny_run):
    space = tiny_run[1].space
    plan = plan_configs(space)
    assert plan == plan_configs(space) and len(set(plan)) == len(plan)
    assert plan[:2] == [space.smallest, space.full] and len(plan) >= 64
    for s, (lo, hi) in enumerate(zip(space.min_widths, space.max_widths)):
        widths = {c.widths[s] for c in plan}
        assert min(widths) == lo and max(widths) == hi and len(widths) >= (hi - lo + 1) // 2
    for s in range(space.num_stages):
        assert {c.depths[s] for c in plan} == set(range(space.min_depths[s], space.max_depths[s] + 1))


def test_the_time_share_bounds_the_measurement(tiny_run):
    _, m, _ = tiny_run
    ds = m.dataset()
    cfg = AccuracyModelConfig(min_points=10)
    rec = measure_accuracy_model(m, ds.val, ds.norm, train_seconds=1e-3, cfg=cfg)
    assert len(rec.configs) == 10 and rec.planned > 10 and rec.configs == tuple(plan_configs(m.space, cfg)[:10])
    assert rec.accuracy[1] == pytest.approx(accuracy(m.materialize(m.space.full), ds.val, ds.norm))


def test_fit_confirms_predictions_by_real_evaluation(copy, tmp_path):
    path = tmp_path / "unbounded.safetensors"  # a record of every planned config: the same whatever the machine's speed
    attach_accuracy_model(copy, path, bounded=False, cfg=AccuracyModelConfig(points=32))
    m = load_manifold(path)
    space = m.space
    budget = fake_latency(shapes.layers(space.scaled(0.6, (1, 2, 1)), space))[0]
    r = fit(path, "host-cpu", latency_ms=budget, latency_source=fake_latency)
    assert r.method == "accuracy-model" and r.feasible and r.confirmed >= 1 and not r.note
    p = r.pick
    val = m.dataset().val
    assert p.accuracy_source == "measured" and p.accuracy_images == len(val) and p.latency_ms <= budget
    assert p.accuracy == pytest.approx(accuracy(m.materialize(p.config), val, m.info.normalization), abs=1e-6)
    measured = [c for c in r.pareto if c.accuracy_source == "measured"]
    predicted = [c for c in r.pareto if c.accuracy_source == "predicted"]
    assert all(c.accuracy_sigma and c.accuracy_sigma > 0 for c in predicted)
    assert all(c.accuracy <= p.accuracy for c in measured if c.within(r.budget))  # picked on measured accuracy
    doc = FitDocument.of(r).to_dict()
    assert doc["accuracy_source"] == {"source": "measured", "images": len(val)}
    assert doc["search"]["method"] == "accuracy-model" and doc["search"]["confirmed"] == r.confirmed
    for e in doc["pareto"]:
        src = e["accuracy_source"]
        assert src in ({"source": "measured", "images": len(val)},) or (src["source"] == "predicted" and src["sigma"] > 0)
    back = FitEntry.from_dict(doc)
    assert back.accuracy_source == "measured" and back.accuracy_images == len(val)
    old = {k: v for k, v in doc.items() if k != "accuracy_source"}  # a document written before the field
    assert FitEntry.from_dict(old).accuracy_source == "measured"


def test_a_lucky_survey_point_is_confirmed_before_it_can_be_picked(copy, tmp_path):
    """The survey measures on fewer images at training; a pick is made on whole-split measurements only."""
    import dataclasses

    from metaforge.checkpoint import save_manifold

    path = tmp_path / "lucky.safetensors"
    attach_accuracy_model(copy, path, bounded=False, cfg=AccuracyModelConfig(points=32))
    m = load_manifold(path)
    budget = fake_latency(shapes.layers(m.space.scaled(0.6, (1, 2, 1)), m.space))[0]
    rec = m.accuracy_record
    lucky = next(c for c in rec.configs if c != m.space.smallest and fake_latency(shapes.layers(c, m.space))[0] <= budget)
    m.accuracy_record = dataclasses.replace(rec, accuracy=tuple(1.0 if c == lucky else a for c, a in zip(rec.configs, rec.accuracy)))
    save_manifold(m, path)
    m = load_manifold(path)
    r = fit(path, "host-cpu", latency_ms=budget, latency_source=fake_latency)
    val = m.dataset().val
    assert r.pick.accuracy_images == len(val)
    assert r.pick.accuracy == pytest.approx(accuracy(m.materialize(r.pick.config), val, m.info.normalization), abs=1e-6)
    assert all(c.accuracy < 1.0 or c.accuracy_source == "predicted" for c in r.pareto if c.config == lucky)


def test_an_old_manifold_falls_back_in_one_line_and_can_be_given_a_record(copy, tmp_path):
    old = tmp_path / "old.safetensors"
    rewrite(copy, old, lambda meta: meta.pop("accuracy_model"))
    assert load_manifold(old).accuracy_record is None
    rep = Lines()
    r = fit(old, "host-cpu", latency_ms=0.05, latency_source=fake_latency, max_evals=6, progress=rep)
    assert r.method in ("enumerate", "evolution") and r.pick.accuracy_source == "measured"
    notes = [line for line in rep.lines if "no accuracy model" in line]
    assert len(notes) == 1 and "\n" not in notes[0] and r.note == notes[0]
    assert FitDocument.of(r).to_dict()["search"]["note"] == notes[0]
    new = tmp_path / "new.safetensors"
    before = old.read_bytes()
    rec = attach_accuracy_model(old, new, cfg=AccuracyModelConfig(points=16, min_points=8))
    assert old.read_bytes() == before and load_manifold(new).accuracy_record == rec
    assert fit(new, "host-cpu", latency_ms=0.05, latency_source=fake_latency).method == "accuracy-model"


@pytest.mark.parametrize("edit", [
    lambda rec: "{not json",
    lambda rec: json.dumps({**rec, "schema": "metaforge-accuracy-model/9"}),
    lambda rec: json.dumps({**rec, "accuracy": rec["accuracy"][:-1]}),
    lambda rec: json.dumps({**rec, "accuracy": [1.5] + rec["accuracy"][1:]}),
    lambda rec: json.dumps({**rec, "configs": ["w=99,4,8 d=1,1,1"] + rec["configs"][1:]}),
    lambda rec: json.dumps({**rec, "kernel": {"theta": [0.0]}}),
    lambda rec: json.dumps({k: v for k, v in rec.items() if k != "images"}),
], ids=["not-json", "future-schema", "lengths-differ", "accuracy-above-one", "config-outside-space", "kernel-size", "no-images"])
def test_a_damaged_record_is_a_one_line_error(copy, tmp_path, edit):
    bad = tmp_path / "bad.safetensors"
    rewrite(copy, bad, lambda meta: meta.update(accuracy_model=edit(json.loads(meta["accuracy_model"]))))
    with pytest.raises(CheckpointError, match="damaged accuracy record") as info:
        load_manifold(bad)
    assert "\n" not in str(info.value) and info.value.exit_code == 2


def test_an_unknown_ranking_rule_is_refused_by_name():
    from metaforge.errors import ConfigError
    from metaforge.fit.ranked import RankSettings

    assert RankSettings(rule="ucb").rule == "ucb"
    with pytest.raises(ConfigError, match="unknown ranking rule 'best'; choose one of: mean, ucb"):
        RankSettings(rule="best")
