"""Time ONNX models in ONNX Runtime and read the process's peak memory; run as a script.

Run by path (``python ort_worker.py REQUEST.json``), not as part of the package, so that the
process holds only numpy and onnxruntime and its memory is the runtime's own. The request is
``{"models": [paths], "shapes": [[C, H, W]], "batch", "threads", "optimization", "warmup",
"bursts", "burst_seconds", "min_burst_runs", "max_burst_runs", "quiet_frac", "window_seconds",
"memory"}``; one
JSON line per model goes to stdout: ``{"p50_ms", "p90_ms", "mean_ms", "runs", "peak_mb"}``.

Why bursts, interleaved: on a machine shared with other work, latency moves between regimes
(1.5-1.7x slower while a neighbour loads the memory system) that last from a fraction of a second
to many seconds. Every model is timed in many short bursts, round-robin over all the models of
the request, so each sees the same mix of regimes; the statistics come from the quietest
``quiet_frac`` of its bursts (by median). On a quiet device every burst is alike and this is the
plain p50/p90 of all runs.

Peak memory is measured only when ``memory`` is true, for the first model (load it alone).
"""

import json
import math
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


def _session(path, req, ort):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = req["threads"]
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}[req["optimization"]]
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _burst(run, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def quiet_stats(bursts, quiet_frac, np):
    """p50/p90/mean in ms of the runs of the quietest ``quiet_frac`` of the bursts."""
    bursts = sorted(bursts, key=lambda b: float(np.median(b)))
    keep = bursts[: max(1, int(math.ceil(quiet_frac * len(bursts))))]
    ms = np.concatenate([np.asarray(b) for b in keep]) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(ms.mean()), "runs": int(sum(len(b) for b in bursts))}


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    import numpy as np
    import onnxruntime as ort

    can_reset = req["memory"] and _reset_peak()
    base = _status("VmRSS") if can_reset else _status("VmHWM")
    runs, sizes = [], []
    for i, (path, shape) in enumerate(zip(req["models"], req["shapes"])):
        x = np.random.default_rng(0).standard_normal((req["batch"], *shape)).astype(np.float32)
        sess = _session(path, req, ort)
        feed = {sess.get_inputs()[0].name: x}
        run = (lambda s, d: lambda: s.run(None, d))(sess, feed)
        warm = _burst(run, req["warmup"])
        each = max(min(warm[len(warm) // 2:]), 1e-6)
        sizes.append(int(min(req["max_burst_runs"], max(req["min_burst_runs"], req["burst_seconds"] / each))))
        runs.append(run)
    peak = _status("VmHWM") if req["memory"] else None
    bursts = [[] for _ in runs]
    start = time.perf_counter()
    for b in range(req["bursts"]):
        for j in range(len(runs)):  # rotate the order so no model always follows the same one
            i = (j + b) % len(runs)
            bursts[i].append(_burst(runs[i], sizes[i]))
        pause = start + (b + 1) * req["window_seconds"] / req["bursts"] - time.perf_counter()
        if pause > 0:  # a few models: spread the bursts over the window, so one slow spell cannot cover them all
            time.sleep(pause)
    peak_mb = (peak - base) / 2**20 if peak is not None and base is not None else None
    for i in range(len(runs)):
        row = quiet_stats(bursts[i], req["quiet_frac"], np)
        row["peak_mb"] = peak_mb if i == 0 else None
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
