"""Build and run a TensorRT engine here (imported only when ``tensorrt`` and a CUDA GPU are present).

The per-release calls (8.x / 10.x / 11.x) and the CUDA memory (cuda-python or pycuda) are the
module :mod:`metaforge.export.trt_device`, which every bundle ships beside run.py, so the host and the device build engines the same
way and one test double of each release's bindings checks both. int8 is explicit quantisation (a
QDQ ONNX calibrated on the host): there is no calibrator here. Never run against a real TensorRT in
this project's CI (no GPU); ``tests/test_trt_api.py`` drives it against API doubles only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from metaforge.export import trt_device as td
from metaforge.export import ExportError
from metaforge.io import atomic_write, atomic_write_text
from metaforge.targets import Target


def _api():
    import tensorrt as trt

    try:
        return td.TrtApi(trt), trt.Logger(trt.Logger.WARNING)
    except td.Unsupported as e:
        raise ExportError(str(e)) from None


def sidecar(engine_path: Path) -> Path:
    """``model.engine.json``: the TensorRT version that built the engine (the bundle records it)."""
    return engine_path.with_name(engine_path.name + ".json")


def engine_version(engine_path: Path) -> str | None:
    try:
        return json.loads(sidecar(engine_path).read_text())["tensorrt_version"]
    except (OSError, ValueError, KeyError):
        return None


def build_engine(onnx_path: Path, engine_path: Path, target: Target, cache_path: Path | None = None) -> Path:
    """Build ``engine_path`` from the ONNX; returns the timing cache written (its name carries the version).

    No calibration here: int8 scales are in the QDQ ONNX, calibrated on the host's training images."""
    api, logger = _api()
    cache = (cache_path or engine_path).with_name(td.cache_name(api.version))
    blob = cache.read_bytes() if cache.is_file() else b""
    try:
        engine, timing, _, _ = td.build_serialized(api, logger, onnx_path.read_bytes(), target.precision, target.workspace_mb << 20, blob)
    except RuntimeError as e:
        raise ExportError(f"{onnx_path}: {e}") from None
    atomic_write(engine_path, lambda p: p.write_bytes(engine))
    atomic_write_text(sidecar(engine_path), json.dumps({"tensorrt_version": api.version, "precision": target.precision}) + "\n")
    atomic_write(cache, lambda p: p.write_bytes(timing))
    return cache


def engine_runner(engine_path: Path, batch: int):
    """Normalised NCHW float32 -> logits through the engine (fixed batch, zero-padded)."""
    from metaforge.export.runtime import _chunks

    api, logger = _api()
    try:
        session = td.Session(api, logger, engine_path.read_bytes(), str(engine_path))
    except (td.Missing, RuntimeError) as e:
        raise ExportError(str(e)) from None

    def run(x: np.ndarray) -> np.ndarray:
        session.feed(np.ascontiguousarray(x, dtype=np.float32))
        session.invoke()
        return session.fetch()

    return lambda x: _chunks(x, batch, run)
