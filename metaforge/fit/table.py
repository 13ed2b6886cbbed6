"""Per-layer latency tables (nn-Meter style): measured on a device, interpolated for any config.

A table holds the time of every layer shape on a grid of widths that covers a manifold's space and
the calibration ``network = scale * sum(layers) + offset`` fitted on whole networks;
:meth:`LatencyTable.predict_ms` interpolates. Torch-free (numpy only), so reading a table, predicting
with it and ingesting a device's results (:mod:`metaforge.bundle.ingest`) never load torch; measuring
one builds modules and lives in :mod:`metaforge.fit.measure_table`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metaforge.errors import MetaforgeError
from metaforge.fit.shapes import Layer
from metaforge.io import atomic_write_text
from metaforge.space import ArchConfig, ArchSpace

SCHEMA = "metaforge-latency-table/1"
STATS = ("p50", "p90")


class TableError(MetaforgeError):
    exit_code = 2


@dataclass
class LatencyTable:
    profile: str
    batch: int
    threads: int
    entries: dict[tuple, dict[str, float]]  # (kind, cin, cout, hw, stride) -> {"p50": ms, "p90": ms}
    calibration: dict[str, list[float]] = field(default_factory=dict)  # stat -> [scale, offset_ms]
    memory: list[float] = field(default_factory=list)  # [offset_mb, MB per MB of weights + activations]
    overhead: dict[str, float] = field(default_factory=dict)  # stat -> ms of running a one-op model
    calibration_configs: list[str] = field(default_factory=list)  # the whole networks timed
    machine: str = ""

    def __post_init__(self) -> None:
        self._groups: dict[tuple, dict[tuple[int, int], float]] = {}
        for (kind, cin, cout, hw, stride), v in self.entries.items():
            for s in STATS:
                self._groups.setdefault((kind, hw, stride, s), {})[(cin, cout)] = v[s]

    def layer_ms(self, layer: Layer, stat: str) -> float:
        group = self._groups.get((layer.kind, layer.hw, layer.stride, stat))
        if not group:
            raise TableError(f"latency table for {self.profile} has no {layer.kind} entries at {layer.hw}x{layer.hw} "
                             f"stride {layer.stride}: measure it for this manifold with `metaforge profile measure --manifold`")
        return max(0.0, _interpolate(group, layer.cin, layer.cout) - self.overhead.get(stat, 0.0))

    def predict_ms(self, ls: list[Layer], stat: str) -> float:
        """Sum of the layers' own times (each standalone timing less the fixed cost of a run),
        scaled and offset by the fit on whole networks."""
        total = sum(self.layer_ms(layer, stat) for layer in ls)
        scale, offset = self.calibration.get(stat, [1.0, 0.0])
        return scale * total + offset

    def to_json(self) -> dict:
        rows = [{"kind": k[0], "cin": k[1], "cout": k[2], "hw": k[3], "stride": k[4], **v} for k, v in sorted(self.entries.items())]
        return {"schema": SCHEMA, "profile": self.profile, "batch": self.batch, "threads": self.threads,
                "machine": self.machine, "overhead": self.overhead, "calibration": self.calibration,
                "calibration_configs": self.calibration_configs, "memory": self.memory, "entries": rows}

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise TableError(f"cannot read latency table {path}: {e}; make one with `metaforge profile measure`") from None
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise TableError(f"{path} is not a latency table of schema {SCHEMA}: re-measure it with `metaforge profile measure`")
        try:
            entries = {(r["kind"], r["cin"], r["cout"], r["hw"], r["stride"]): {s: float(r[s]) for s in STATS} for r in d["entries"]}
            head = (str(d["profile"]), int(d["batch"]), int(d["threads"]))
        except (KeyError, TypeError, ValueError) as e:
            raise TableError(f"{path} is a damaged latency table (bad or missing {e}); re-measure it with `metaforge profile measure`") from None
        return cls(*head, entries, calibration=d.get("calibration", {}),
                   memory=d.get("memory", []), overhead=d.get("overhead", {}), machine=d.get("machine", ""),
                   calibration_configs=d.get("calibration_configs", []))


def _interp1(xs: list[int], ys: list[float], x: float) -> float:
    """Piecewise-linear, extrapolating linearly from the two nearest points (never below 0)."""
    if len(xs) == 1:
        return ys[0]
    i = min(max(int(np.searchsorted(xs, x)), 1), len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def _interpolate(group: dict[tuple[int, int], float], cin: int, cout: int) -> float:
    if (cin, cout) in group:
        return group[(cin, cout)]
    cins, couts = sorted({a for a, _ in group}), sorted({b for _, b in group})
    if all(a == b for a, b in group):  # same width in and out
        return _interp1(cins, [group[(a, a)] for a in cins], cin)
    if len(cins) == 1:
        return _interp1(couts, [group[(cins[0], b)] for b in couts], cout)
    if len(couts) == 1:
        return _interp1(cins, [group[(a, couts[0])] for a in cins], cin)
    rows = [_interp1(couts, [group[(a, b)] for b in couts], cout) for a in cins]  # full grid: bilinear
    return _interp1(cins, rows, cin)


def width_grid(lo: int, hi: int, points: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(lo, hi, max(2, points))})


def grid_layers(space: ArchSpace, points: int) -> list[Layer]:
    """Every layer shape the table measures: a width grid per stage, every transition between stages."""
    grids = [width_grid(lo, hi, points) for lo, hi in zip(space.min_widths, space.max_widths)]
    hw = space.image_size
    out = [Layer("stem", space.in_channels, w, hw) for w in grids[0]]
    for s, grid in enumerate(grids):
        if s == 0:
            out += [Layer("block", w, w, hw) for w in grid]
            continue
        out += [Layer("block", a, w, hw, 2) for a in grids[s - 1] for w in grid]
        hw = out[-1].hw_out
        out += [Layer("block", w, w, hw) for w in grid]
    out += [Layer("head", w, space.num_classes, hw) for w in grids[-1]]
    return out


def random_configs(space: ArchSpace, n: int, seed: int, exclude: set = frozenset()) -> list[ArchConfig]:
    rng, out = random.Random(seed), []
    for _ in range(100 * n):
        c = ArchConfig(tuple(rng.randint(a, b) for a, b in zip(space.min_widths, space.max_widths)),
                       tuple(rng.randint(a, b) for a, b in zip(space.min_depths, space.max_depths)))
        if c not in exclude and c not in out:
            out.append(c)
        if len(out) == n:
            break
    return out
