"""Time ONNX models in ONNX Runtime and read the process's peak memory; run as a script.

Run by path (``python ort_worker.py REQUEST.json``), not as part of the package, so that the
process holds only numpy and onnxruntime and its memory is the runtime's own. The request is
``{"models": [paths], "shapes": [[C, H, W]], "batch", "threads", "optimization", "warmup",
"rounds", "min_runs", "max_runs", "min_seconds"}``; one JSON
line per model goes to stdout: ``{"p50_ms", "p90_ms", "mean_ms", "runs", "peak_mb"}``.
"""

import json
import sys
import time


def _status(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak():
    """Reset VmHWM to the current resident size (Linux >= 4.0); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(path, shape, req, np, ort):
    x = np.random.default_rng(0).standard_normal((req["batch"], *shape)).astype(np.float32)
    can_reset = _reset_peak()
    base = _status("VmRSS") if can_reset else _status("VmHWM")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = req["threads"]
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}[req["optimization"]]
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(req["warmup"]):
        sess.run(None, {name: x})
    peak = _status("VmHWM")
    best, runs = None, 0
    for _ in range(req["rounds"]):  # on a shared machine, the least disturbed round is the truth
        ms = np.asarray(_time(sess, name, x, req)) * 1e3
        runs += len(ms)
        if best is None or np.percentile(ms, 50) < np.percentile(best, 50):
            best = ms
    peak_mb = (peak - base) / 2**20 if peak is not None and base is not None else None
    return {"p50_ms": float(np.percentile(best, 50)), "p90_ms": float(np.percentile(best, 90)),
            "mean_ms": float(best.mean()), "runs": runs, "peak_mb": peak_mb}


def _time(sess, name, x, req):
    times = []
    start = time.perf_counter()
    limit = req["min_seconds"] / req["rounds"]
    while len(times) < req["max_runs"] and (len(times) < req["min_runs"] or time.perf_counter() - start < limit):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return times


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    import numpy as np
    import onnxruntime as ort

    for path, shape in zip(req["models"], req["shapes"]):
        print(json.dumps(measure(path, shape, req, np, ort)), flush=True)


if __name__ == "__main__":
    main()
