"""Latency of a config, from three sources in order of trust: measured, table, roofline.

- ``measured``: the network exported to ONNX and timed in a real ONNX Runtime session (warm-up,
  many short interleaved bursts, p50/p90 of the quietest quarter) in a fresh process, which also
  reports the session's peak memory;
- ``table``: a per-layer table measured on the device by ``metaforge profile measure``
  (:mod:`metaforge.fit.table`), interpolated;
- ``roofline``: per layer max(compute time, memory time) + a fixed overhead per operator, from the
  profile's numbers.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from metaforge.errors import MetaforgeError
from metaforge.fit.shapes import Layer
from metaforge.profiles import BYTES_PER, Profile

if TYPE_CHECKING:
    from torch import nn

WORKER = Path(__file__).with_name("ort_worker.py")


class MeasureError(MetaforgeError):
    """The runtime is not present here, or a measurement failed."""

    exit_code = 4


@dataclass(frozen=True)
class Measurement:
    """One model timed in ONNX Runtime: latency statistics in ms and peak memory in MB."""

    p50_ms: float
    p90_ms: float
    mean_ms: float
    runs: int
    peak_mb: float | None

    def stat(self, name: str) -> float:
        return {"p50": self.p50_ms, "p90": self.p90_ms, "mean": self.mean_ms}[name]


def roofline_ms(ls: list[Layer], profile: Profile) -> float:
    """Analytic latency: every conv at max(compute, memory traffic) plus per-operator overhead."""
    dev, b = profile.device, profile.batch
    peak = dev.peak_gflops.get(profile.precision) or dev.peak_gflops.get("fp32")
    if not peak:
        raise MetaforgeError(f"profile {profile.name} gives no 'device.peak_gflops' for {profile.precision} or fp32: add one")
    nbytes = BYTES_PER[profile.precision]
    total = 0.0
    for layer in ls:
        for ci, co, k, o in layer.convs:
            flops = 2.0 * b * o * o * co * ci * k * k
            hw_in = layer.hw if k == 3 or layer.kind != "block" else o
            traffic = nbytes * (b * (ci * hw_in * hw_in + co * o * o) + ci * co * k * k)
            total += max(flops / (peak * 1e9 * dev.compute_efficiency), traffic / (dev.memory_bandwidth_gbs * 1e9))
        total += layer.ops * dev.layer_overhead_us * 1e-6
    return total * 1e3


def runtime_available(profile: Profile) -> str | None:
    """None if ``profile``'s runtime can be measured on this machine, else the reason it cannot."""
    if not profile.device.local:
        return (f"profile {profile.name} describes another device (device.local is false); its latency can only be "
                "measured there, and metaforge measures ONNX Runtime only so far: use the roofline or a table")
    if profile.format != "onnx":
        return f"measuring is supported for ONNX Runtime targets only, and {profile.name} uses {profile.format}"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed here: pip install onnxruntime"
    return None


def timing_onnx(module: nn.Module, shape: tuple[int, ...], batch: int, path: Path) -> Path:
    """The export's ONNX writer at opset 17 and a fixed batch, without metadata: the file only lives to be timed."""
    from metaforge.export.onnx import torchscript_onnx

    path.write_bytes(torchscript_onnx(module, shape, 17, batch))
    return path


@dataclass(frozen=True)
class Timing:
    """How the worker times: many short bursts per model, interleaved, statistics from the quietest
    ``quiet_frac`` of them (see ``ort_worker.py`` for why). The defaults give every model at least
    ``bursts * min_burst_runs`` = 210 timed runs."""

    warmup: int = 10
    bursts: int = 30
    burst_seconds: float = 0.004
    min_burst_runs: int = 7
    max_burst_runs: int = 200
    quiet_frac: float = 0.25
    window_seconds: float = 1.5  # the bursts of few models are spread over at least this long


def measure_modules(modules: list[nn.Module], shapes: list[tuple[int, ...]], profile: Profile, *,
                    memory: bool | Collection[int] = False, timing: Timing = Timing()) -> list[Measurement]:
    """Export every module and time them together in one fresh ONNX Runtime process, interleaved.

    The peak memory of the modules whose indices are in ``memory`` (True: all) is read in a process of its own for
    each (the first model of a process is the only one whose peak is its own)."""
    reason = runtime_available(profile)
    if reason:
        raise MeasureError(reason)
    with tempfile.TemporaryDirectory(prefix="metaforge-measure-") as tmp:
        paths = [str(timing_onnx(m, s, profile.batch, Path(tmp) / f"m{i}.onnx")) for i, (m, s) in enumerate(zip(modules, shapes))]
        wanted = set(range(len(paths)) if memory is True else memory or ())
        rows = _run_worker(paths, shapes, profile, Path(tmp), timing, memory=wanted == {0} and len(paths) == 1)
        if len(paths) > 1:
            quick = dataclasses.replace(timing, bursts=1, window_seconds=0.0)
            for i in sorted(wanted):
                rows[i]["peak_mb"] = _run_worker([paths[i]], [shapes[i]], profile, Path(tmp), quick, memory=True)[0]["peak_mb"]
    return [Measurement(**r) for r in rows]


def _run_worker(paths: list[str], shapes: list[tuple[int, ...]], profile: Profile, tmp: Path, timing: Timing,
                memory: bool) -> list[dict]:
    request = {"models": paths, "shapes": [list(s) for s in shapes], "batch": profile.batch,
               "threads": profile.device.threads, "optimization": profile.device.ort_optimization,
               "memory": memory, **dataclasses.asdict(timing)}
    req_path = tmp / "request.json"
    req_path.write_text(json.dumps(request))
    proc = subprocess.run([sys.executable, str(WORKER), str(req_path)], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise MeasureError(f"ONNX Runtime measurement failed: {last}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(rows) != len(paths):
        raise MeasureError(f"ONNX Runtime measurement returned {len(rows)} results for {len(paths)} models")
    return rows


def measure_one(module: nn.Module, shape: tuple[int, ...], profile: Profile, timing: Timing = Timing()) -> Measurement:
    """One network's latency and peak memory, alone in a fresh process."""
    return measure_modules([module], [shape], profile, memory=True, timing=timing)[0]
