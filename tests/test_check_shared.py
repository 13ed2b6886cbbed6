"""``check`` over several profiles: one manifold load, one dataset load, no config evaluated twice."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

PROFILE = """name: {name}
description: a test board
target: onnx-fp32
batch: 1
budget: {{latency_ms: 5.0, latency_stat: p50, memory_mb: 64, accuracy_floor: 0.0}}
device:
  peak_gflops: {{fp32: 80, fp16: 80, int8: 160}}
  memory_bandwidth_gbs: 20
  memory_mb: 2048
  layer_overhead_us: 3
  compute_efficiency: 0.2
  runtime_overhead_mb: 12
  local: false
"""


def test_check_over_two_profiles_loads_once_and_evaluates_no_config_twice(tiny_run, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import metaforge.checkpoint as checkpoint
    import metaforge.data as data
    from metaforge.deploy.check import check_profiles
    from metaforge.fit.search import AccuracyCache, Evaluator

    path = tmp_path / "m.safetensors"
    shutil.copy(tiny_run[0], path)  # no accuracy cache beside it
    profiles = []
    for name in ("board-a", "board-b"):  # the same budget: each fit wants the same configs confirmed
        (tmp_path / f"{name}.yaml").write_text(PROFILE.format(name=name))
        profiles.append(str(tmp_path / f"{name}.yaml"))
    loads, datasets, evaluated = Counter(), Counter(), Counter()
    load_manifold, load_dataset, measure = checkpoint.load_manifold, data.load_dataset, Evaluator.measure
    monkeypatch.setattr(checkpoint, "load_manifold", lambda *a, **k: loads.update(["manifold"]) or load_manifold(*a, **k))
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: datasets.update(["dataset"]) or load_dataset(*a, **k))
    monkeypatch.setattr(Evaluator, "measure", lambda self, c: evaluated.update([str(c)]) or measure(self, c))
    # as in a read-only folder: nothing persists between the fits but what they share in memory
    monkeypatch.setattr(AccuracyCache, "save", lambda self: None)

    runs = check_profiles(path, profiles, tmp_path / "out")

    assert [r.profile for r in runs] == ["board-a", "board-b"] and all(r.config for r in runs)
    assert loads["manifold"] == 1 and datasets["dataset"] == 1
    assert evaluated and max(evaluated.values()) == 1, evaluated
