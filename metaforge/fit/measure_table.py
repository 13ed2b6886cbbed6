"""Measuring a latency table: every layer shape and a few whole networks timed in the real runtime.

Each layer of the table's grid is a standalone model; a few whole networks are timed with them and
``network = scale * sum(layers) + offset`` is fitted so that what standalone timing misses (the
session's fixed cost, caches) is accounted for. The same calibration networks give the memory model
``peak = offset + a * (weights + activations)`` (one slope: on small networks the two cannot be
told apart, and a fit with two slopes gives one a negative sign). The one part of tables that
needs torch: :mod:`.table` reads and predicts without it.
"""

from __future__ import annotations

import platform

import numpy as np
from torch import nn

from metaforge.fit import shapes
from metaforge.fit.latency import MeasureError, Timing, measure_modules, runtime_available
from metaforge.fit.memory import memory_terms
from metaforge.fit.shapes import Layer
from metaforge.fit.table import STATS, LatencyTable, grid_layers, random_configs
from metaforge.nets import BasicBlock, ConvUnit, ResNet
from metaforge.profiles import Profile
from metaforge.progress import Progress
from metaforge.space import ArchSpace


class _Head(nn.Module):
    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def layer_module(layer: Layer) -> nn.Module:
    if layer.kind == "stem":
        return nn.Sequential(ConvUnit(layer.cin, layer.cout, 3, 1, "none"), nn.ReLU())
    if layer.kind == "head":
        return _Head(layer.cin, layer.cout)
    return BasicBlock(layer.cin, layer.cout, layer.stride, "none")


def build_table(profile: Profile, space: ArchSpace, points: int = 6, calibration: int = 10, seed: int = 1234,
                progress: Progress | None = None, timing: Timing | None = None) -> LatencyTable:
    """Measure a table for ``profile`` (its runtime must be on this machine) covering ``space``.

    A one-op model, every layer shape and the calibration networks are timed in one runtime
    process, interleaved (:mod:`metaforge.fit.ort_worker`), so that the layers and the networks
    they must add up to are measured under the same conditions; peak memory of each calibration
    network is then read in a process of its own."""
    if reason := runtime_available(profile):
        raise MeasureError(reason)
    progress = progress or Progress()
    grid = grid_layers(space, points)
    configs = random_configs(space, calibration, seed) + [space.smallest, space.full]
    shape = space.input_shape
    modules = [nn.ReLU()] + [layer_module(x) for x in grid] + [ResNet(c, space.in_channels, space.num_classes) for c in configs]
    shapes_in = [shape] + [(x.cin, x.hw, x.hw) for x in grid] + [shape] * len(configs)
    progress.phase(f"timing {len(grid)} layer shapes and {len(configs)} networks", 1)
    got = measure_modules(modules, shapes_in, profile, memory=range(1 + len(grid), len(modules)), timing=timing or Timing())
    progress.advance()
    null, rows, meas = got[0], got[1:1 + len(grid)], got[1 + len(grid):]
    entries = {(x.kind, x.cin, x.cout, x.hw, x.stride): {"p50": r.p50_ms, "p90": r.p90_ms} for x, r in zip(grid, rows)}
    table = LatencyTable(profile.name, profile.batch, profile.device.threads, entries, machine=platform.processor() or platform.machine())
    table.overhead = {s: null.stat(s) for s in STATS}
    table.calibration_configs = [str(c) for c in configs]
    terms = [memory_terms(shapes.layers(c, space), profile) for c in configs]
    for s in STATS:
        sums = [table.predict_ms(shapes.layers(c, space), s) for c in configs]
        a = np.stack([sums, np.ones(len(configs))], 1)
        scale, offset = np.linalg.lstsq(a, np.array([m.stat(s) for m in meas]), rcond=None)[0]
        table.calibration[s] = [float(scale), float(offset)]
    if all(m.peak_mb is not None for m in meas):
        payload, peak = np.array([w + act for w, act in terms]), np.array([m.peak_mb for m in meas])
        offset, slope = np.linalg.lstsq(np.stack([np.ones_like(payload), payload], 1), peak, rcond=None)[0]
        if slope < 0:  # noise larger than the networks: keep the physical slope of 1
            offset, slope = float(np.mean(peak - payload)), 1.0
        table.memory = [float(offset), float(slope)]
    return table
