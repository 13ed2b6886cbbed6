"""``ingest``: a device's ``results.json`` -> the profile's latency table, so the next fit uses measured numbers.

A bundle measures whole networks, not single layers, so ingest calibrates a per-layer predictor
on them rather than measuring layers: the table's per-layer entries are those of the profile's
existing table (``--table``, else the profile's ``latency_table``) or, when it has none, the
profile's roofline evaluated on the manifold's layer grid; its calibration
``network = scale x sum(layers) + offset`` is fitted to the measured networks by least squares on
the *relative* error (budgets are ratios), falling back to a pure scale (geometric mean of
measured / predicted) when the fit would predict a non-positive latency for the smallest config.
Errors are reported before (the fit's prediction, else the bundle's), after, and leave-one-out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metaforge.bundle import RESULTS_SCHEMA, BundleError
from metaforge.fit import shapes
from metaforge.fit.table import STATS, LatencyTable, grid_layers
from metaforge.io import atomic_write_text, ensure_writable
from metaforge.profiles import Profile, load_profile
from metaforge.space import ArchConfig, ArchSpace

BACKENDS = {"onnx": ("onnxruntime",), "tflite": ("tflite_runtime", "ai_edge_litert"), "tensorrt": ("tensorrt",)}
MAX_GRID_POINTS = 17  # widths per stage in a roofline table: interpolation error of w^2 under 1%


@dataclass(frozen=True)
class Row:
    id: str
    config: str
    measured: float
    before: float | None
    before_source: str
    after: float
    loo: float | None  # predicted by a calibration fitted without this config

    @staticmethod
    def err(pred: float | None, meas: float) -> float | None:
        return None if pred is None else (pred - meas) / meas


@dataclass
class IngestResult:
    table: LatencyTable
    path: Path
    stat: str
    basis: str
    rows: list[Row]
    method: dict[str, str]
    skipped: list[str] = field(default_factory=list)

    def mean_abs_error(self, which: str) -> float | None:
        errs = [Row.err(getattr(r, which), r.measured) for r in self.rows]
        errs = [abs(e) for e in errs if e is not None]
        return float(np.mean(errs)) if errs else None


def load_results(path: str | Path, prof: Profile) -> dict:
    """The runner's results, checked to belong to ``prof`` and its runtime."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"cannot read results {path}: {getattr(e, 'strerror', None) or e}; "
                          "run `python3 run.py` inside the bundle on the device and copy its results.json back") from None
    if not isinstance(doc, dict) or doc.get("schema") != RESULTS_SCHEMA:
        raise BundleError(f"{path} is not a bundle results file (schema {RESULTS_SCHEMA}); it is written by run.py of `metaforge bundle`")
    if doc.get("profile") != prof.name:
        raise BundleError(f"{path} holds measurements for profile {doc.get('profile')}, not {prof.name}: "
                          f"ingest it with --profile {doc.get('profile')}, or bundle for {prof.name}")
    _check_fields(doc, path)
    fmt = doc["target"]["format"]
    if fmt != prof.format or doc.get("batch") != prof.batch or int(doc.get("threads") or 0) != prof.device.threads:
        raise BundleError(f"{path} was measured as {fmt} batch {doc.get('batch')} with {doc.get('threads')} threads, but profile "
                          f"{prof.name} is {prof.format} batch {prof.batch} with {prof.device.threads} threads; bundle again")
    for m in doc["models"]:
        if "latency" in m and m.get("backend") not in BACKENDS[fmt]:
            raise BundleError(f"{path}: model {m['id']} was timed in {m.get('backend')}, not in the profile's runtime "
                              f"({' or '.join(BACKENDS[fmt])}); its latency says nothing about {prof.name}")
    return doc


def _check_fields(doc: dict, path: Path) -> None:
    """Every field ingest reads is there and of its type: a damaged file is one line, not a traceback."""
    try:
        str(doc["target"]["format"])
        ArchSpace.from_dict(doc["space"])
        for m in doc["models"]:
            str(m["id"]), ArchConfig.parse(m["config"])
            if "latency" in m:
                [float(m["latency"][f"{s}_ms"]) for s in STATS]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"field {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__
        raise BundleError(f"{path} is a damaged results file ({what} is missing or malformed); "
                          "copy results.json from the device again, or run run.py there again") from None


def roofline_table(prof: Profile, space: ArchSpace) -> LatencyTable:
    """The profile's roofline per layer on a dense width grid (the roofline is additive over layers)."""
    from metaforge.fit.latency import roofline_ms

    points = min(MAX_GRID_POINTS, max(hi - lo + 1 for lo, hi in zip(space.min_widths, space.max_widths)))
    entries = {}
    for layer in grid_layers(space, points):
        ms = roofline_ms([layer], prof)
        entries[(layer.kind, layer.cin, layer.cout, layer.hw, layer.stride)] = {s: ms for s in STATS}
    return LatencyTable(prof.name, prof.batch, prof.device.threads, entries)


def fit_calibration(raw: np.ndarray, measured: np.ndarray, floor_raw: float) -> tuple[float, float, str]:
    """(scale, offset, method) minimising the relative error of ``scale * raw + offset``."""
    if len(raw) >= 2 and np.ptp(raw) > 1e-9 * raw.max():
        a = np.stack([raw / measured, 1.0 / measured], 1)
        scale, offset = np.linalg.lstsq(a, np.ones(len(raw)), rcond=None)[0]
        if scale > 0 and scale * floor_raw + offset > 0:
            return float(scale), float(offset), "scale + offset (least squares, relative error)"
    scale = float(np.exp(np.mean(np.log(measured / raw))))
    return scale, 0.0, "scale only (geometric mean of measured / predicted)"


def ingest(results: str | Path, profile: str | Path, *, out: str | Path | None = None,
           base_table: str | Path | None = None) -> IngestResult:
    """Calibrate the profile's latency table on ``results`` and write it to ``out``."""
    prof = load_profile(profile)
    doc = load_results(results, prof)
    out = ensure_writable(out or prof.table_path() or f"{prof.name}.table.json")
    space = ArchSpace.from_dict(doc["space"])
    stat = prof.budget.latency_stat
    base_path = Path(base_table) if base_table else prof.table_path()
    if base_path is not None and base_path.is_file():
        table = LatencyTable.load(base_path)
        if (table.profile, table.batch, table.threads) != (prof.name, prof.batch, prof.device.threads):
            raise BundleError(f"base table {base_path} is for {table.profile} (batch {table.batch}, {table.threads} threads), not {prof.name}")
        basis = f"per-layer entries of {base_path}"
    elif base_table:
        raise BundleError(f"base table {base_table} does not exist; leave --table out to calibrate the roofline")
    else:
        table, basis = roofline_table(prof, space), f"roofline of profile {prof.name} on the manifold's layer grid"
    usable = [m for m in doc["models"] if "latency" in m]
    skipped = [f"{m['id']} '{m['config']}': {m.get('error', 'no latency')}" for m in doc["models"] if "latency" not in m]
    if not usable:
        raise BundleError(f"{results} has no measured model ({'; '.join(skipped) or 'empty'}); fix the runtime on the device and run again")
    table.calibration = {}
    layer_lists = [shapes.layers(space.check(ArchConfig.parse(m["config"])), space) for m in usable]
    floor = shapes.layers(space.smallest, space)
    methods, after, loo = {}, {}, {}
    for s in STATS:
        raw = np.array([table.predict_ms(ls, s) for ls in layer_lists])
        meas = np.array([m["latency"][f"{s}_ms"] for m in usable])
        floor_raw = table.predict_ms(floor, s)
        scale, offset, methods[s] = fit_calibration(raw, meas, floor_raw)
        after[s] = scale * raw + offset
        if len(raw) >= 2:
            keep = lambda i: np.arange(len(raw)) != i  # noqa: E731
            loo[s] = [float(np.dot(fit_calibration(raw[keep(i)], meas[keep(i)], floor_raw)[:2], [raw[i], 1.0])) for i in range(len(raw))]
        table.calibration[s] = [scale, offset]
    rows = [Row(m["id"], m["config"], float(m["latency"][f"{stat}_ms"]), *_before(m, stat),
                float(after[stat][i]), loo[stat][i] if stat in loo else None) for i, m in enumerate(usable)]
    table.calibration_configs = [m["config"] for m in usable]
    dev = doc.get("device", {})
    table.machine = str(dev.get("model") or dev.get("machine") or "")
    result = IngestResult(table, out, stat, basis, rows, methods, skipped)
    payload = {**table.to_json(), "basis": basis, "ingested": {
        "results": str(results), "bundle": doc.get("bundle"), "device": dev.get("model"),
        "runtime": sorted({f"{m['backend']} {m['runtime_version']}" for m in usable}), "started": doc.get("started"),
        "method": methods, "stat": stat,
        "rows": [r.__dict__ for r in rows],
        "mean_abs_error": {k: result.mean_abs_error(k) for k in ("before", "after", "loo")},
    }}
    atomic_write_text(result.path, json.dumps(payload, indent=1) + "\n")
    return result


def _before(model: dict, stat: str) -> tuple[float | None, str]:
    """What was predicted for the model before: the fit's own number when the bundle came from a fit
    for this statistic (it may have used a table), else the bundle's prediction (table or roofline)."""
    pred = model.get("predicted") or {}
    fitted = pred.get("fit") or {}
    if fitted.get("stat") == stat and fitted.get("value") is not None:
        return float(fitted["value"]), f"fit: {fitted.get('source', '?')}"
    v = pred.get(stat)
    return (float(v), pred.get("source", "?")) if v is not None and math.isfinite(v) else (None, "none")
