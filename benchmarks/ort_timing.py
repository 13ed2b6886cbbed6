"""ONNX Runtime latency of several models measured interleaved in one process, so they share the
machine's state (frequency, cache, other jobs' load) and their ratio is fair on a shared machine."""

from __future__ import annotations

import statistics
import time

import numpy as np
from torch import nn

from metaforge.export import ModelSpec
from metaforge.export.onnx import onnx_bytes

OPSET = 17
ROUND = 10  # consecutive runs of one model before switching to the next


def session(model: nn.Module, spec: ModelSpec, batch: int, threads: int = 1, level: str = "extended"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                     "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                     "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    return ort.InferenceSession(onnx_bytes(model, spec, OPSET, batch), opts, providers=["CPUExecutionProvider"])


def interleaved_latency_ms(models: dict[str, nn.Module], spec: ModelSpec, batch: int, runs: int) -> dict[str, dict[str, float]]:
    """Per model, the median wall and CPU ms per call, ``runs`` calls each, alternating in rounds of ``ROUND``.

    With one intra-op thread ONNX Runtime computes on the calling thread, so the process CPU time
    of a call is its compute time even while other jobs take the core away (wall time is not).
    """
    sessions = {k: session(m, spec, batch) for k, m in models.items()}
    x = np.random.default_rng(0).standard_normal((batch, *spec.input_shape)).astype(np.float32)
    names = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    cpu: dict[str, list[float]] = {k: [] for k in sessions}
    for k, s in sessions.items():  # warm-up
        for _ in range(ROUND):
            s.run(None, {names[k]: x})
    order = list(sessions)
    for r in range(max(1, runs // ROUND)):
        for k in (order if r % 2 == 0 else order[::-1]):
            s = sessions[k]
            for _ in range(ROUND):
                t, c = time.perf_counter(), time.process_time()
                s.run(None, {names[k]: x})
                times[k].append(1000 * (time.perf_counter() - t))
                cpu[k].append(1000 * (time.process_time() - c))
    return {k: {"wall": statistics.median(times[k]), "cpu": statistics.median(cpu[k])} for k in sessions}
