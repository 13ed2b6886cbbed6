#!/usr/bin/env python3
"""metaforge bundle runner: time and check the bundled models on this device, write results.json.

Copied into every bundle as ``run.py``. It needs only the device's own Python (3.6 or newer, the
Python of JetPack 4.6), numpy and one runtime: TensorRT 8.x / 10.x / 11.x (trt_device.py beside this
file; the engine is built here from the ONNX, because engines only run on the GPU and TensorRT version
that built them, unless the bundle ships one built with this exact version), tflite_runtime
or ai_edge_litert, or onnxruntime. No pip, no network. It cannot import metaforge, so the parity
metrics below restate metaforge.export.checks (tests/test_bundle.py checks that both agree).

    python3 run.py                      # every model, the manifest's warm-up and run counts
    python3 run.py --runs 1000 --out results.json --backend tflite_runtime
"""

import argparse
import glob
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback

import numpy as np

SCHEMA = "metaforge.bundle-results/1"
MIN_RUNS = 200
SQNR_IDENTICAL = 400.0
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # run_backends.py ships beside run.py
    sys.path.insert(0, HERE)

from run_backends import Missing, open_backend, write_atomic  # noqa: E402


def run_all(backend, x):
    """Logits for every sample, in pieces of the model's fixed batch (the last piece zero-padded)."""
    outs, b = [], backend.batch
    for i in range(0, len(x), b):
        piece = x[i:i + b]
        n = len(piece)
        if n < b:
            piece = np.concatenate([piece, np.zeros((b - n,) + piece.shape[1:], piece.dtype)])
        backend.feed(piece)
        backend.invoke()
        outs.append(backend.fetch()[:n])
    return np.concatenate(outs)


def time_model(backend, x, warmup, runs):
    backend.feed(x[:backend.batch])
    for _ in range(warmup):
        backend.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        backend.invoke()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    stats = dict((k, float(np.percentile(ms, q))) for k, q in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99)))
    stats.update(mean_ms=float(ms.mean()), min_ms=float(ms.min()), max_ms=float(ms.max()), std_ms=float(ms.std()),
                 runs=int(runs), warmup=int(warmup), batch=int(backend.batch))
    return stats


def parity(ref, out):
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    noise, signal = float(np.sum((ref - out) ** 2)), float(np.sum(ref ** 2))
    sqnr = SQNR_IDENTICAL if noise == 0.0 else 10.0 * math.log10(max(signal, 1e-30) / noise)
    return {"max_abs_diff": float(np.max(np.abs(ref - out))), "sqnr_db": round(sqnr, 3),
            "top1_agreement": float(np.mean(ref.argmax(1) == out.argmax(1)))}


def gates(p, acc, acc_ref, tol):
    checks = []
    if tol.get("max_abs_diff") is not None:
        checks.append(("parity.max_abs_diff", p["max_abs_diff"] <= tol["max_abs_diff"], "%.3g (limit %.3g)" % (p["max_abs_diff"], tol["max_abs_diff"])))
    if tol.get("top1_agreement") is not None:
        checks.append(("parity.top1_agreement", p["top1_agreement"] >= tol["top1_agreement"], "%.4f (minimum %s)" % (p["top1_agreement"], tol["top1_agreement"])))
    if tol.get("sqnr_db") is not None:
        checks.append(("parity.sqnr_db", p["sqnr_db"] >= tol["sqnr_db"], "%.1f dB (minimum %s dB)" % (p["sqnr_db"], tol["sqnr_db"])))
    if tol.get("int8_accuracy_ratio") is not None:
        ratio = acc / acc_ref if acc_ref > 0 else 1.0
        checks.append(("accuracy.ratio", ratio >= tol["int8_accuracy_ratio"], "%.4f / %.4f = %.4f (minimum %s)" % (acc, acc_ref, ratio, tol["int8_accuracy_ratio"])))
    return [{"name": n, "status": "pass" if ok else "fail", "detail": d} for n, ok, d in checks]


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except (OSError, IOError):
        return None


def clocks():
    """CPU and GPU frequencies (kHz / Hz as the kernel gives them), governors, temperatures."""
    cpus = {}
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        cpus[d.split("/")[-2]] = {"cur_khz": read(d + "/scaling_cur_freq"), "max_khz": read(d + "/scaling_max_freq"),
                                  "governor": read(d + "/scaling_governor")}
    gpus = {}
    for d in sorted(set(glob.glob("/sys/devices/gpu.0/devfreq/*") + glob.glob("/sys/class/devfreq/*"))):
        if read(d + "/cur_freq") is not None:
            gpus[os.path.basename(d)] = {"cur_hz": read(d + "/cur_freq"), "max_hz": read(d + "/max_freq"), "governor": read(d + "/governor")}
    temps = {}
    for d in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        t = read(d + "/temp")
        if t and t.lstrip("-").isdigit():
            temps[read(d + "/type") or os.path.basename(d)] = int(t) / 1000.0
    return {"cpu": cpus, "devfreq": gpus, "temperature_c": temps, "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def device_info():
    cpuinfo = read("/proc/cpuinfo") or ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware", "Model", "CPU part") and key not in fields:
            fields[key] = value.strip()
    info = {"model": read("/proc/device-tree/model") or fields.get("Model") or fields.get("model name") or platform.node(),
            "cpuinfo": fields, "machine": platform.machine(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "jetson_release": read("/etc/nv_tegra_release"), "nvpmodel": None}
    if shutil.which("nvpmodel"):
        try:
            proc = subprocess.Popen(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            out, _ = proc.communicate(timeout=5)
            info["nvpmodel"] = out.strip()
        except Exception as e:  # a hung or failing tool must not stop the measurement
            info["nvpmodel"] = "unreadable: %s" % e
    info["clocks"] = clocks()
    return info



def measure_model(model, manifest, samples, args):
    entry = {"id": model["id"], "role": model["role"], "config": model["config"], "file": model["file"],
             "precision": model["precision"], "predicted": model.get("predicted")}
    backend, missing = open_backend(model, manifest, args.backend, args.threads, args.rebuild)
    entry.update(backend=backend.name, runtime_version=backend.version, missing=missing, notes=getattr(backend, "notes", []))
    if getattr(backend, "engine_file", None):
        entry["engine"] = {"file": backend.engine_file, "build_s": backend.build_s}
    x, labels, ref = samples["x"], samples["labels"], samples["ref_" + model["id"]]
    out = run_all(backend, x)
    p = parity(ref, out)
    acc, acc_ref = float(np.mean(out.argmax(1) == labels)), float(np.mean(ref.argmax(1) == labels))
    entry.update(n_samples=int(len(x)), parity=p, accuracy={"artifact": round(acc, 5), "reference": round(acc_ref, 5)})
    entry["checks"] = gates(p, acc, acc_ref, manifest["target"]["tolerances"])
    entry["latency"] = time_model(backend, x, args.warmup, args.runs)
    entry["passed"] = all(c["status"] == "pass" for c in entry["checks"])
    return entry


def main(argv=None):
    with open(os.path.join(HERE, "manifest.json")) as f:
        manifest = json.load(f)
    lat = manifest.get("latency", {})
    ap = argparse.ArgumentParser(description="Time and check this bundle's models on this device; writes results.json.")
    ap.add_argument("--runs", type=int, default=lat.get("runs", 1000), help="timed runs per model (at least %d)" % MIN_RUNS)
    ap.add_argument("--warmup", type=int, default=lat.get("warmup", 50), help="untimed runs first")
    ap.add_argument("--backend", default="auto", help="auto, onnxruntime, tflite_runtime, ai_edge_litert or tensorrt")
    ap.add_argument("--threads", type=int, default=manifest.get("threads", 0), help="runtime CPU threads (0: the runtime's default)")
    ap.add_argument("--models", default="", help="comma-separated model ids (default: all)")
    ap.add_argument("--rebuild", action="store_true", help="TensorRT: rebuild engines even if one exists")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"), help="where to write the results")
    args = ap.parse_args(argv)
    if args.runs < MIN_RUNS:
        ap.error("--runs must be at least %d (p99 needs them)" % MIN_RUNS)
    samples = np.load(os.path.join(HERE, manifest["samples"]["file"]), allow_pickle=False)
    samples = dict((k, samples[k]) for k in samples.files)
    wanted = [m for m in args.models.split(",") if m]
    results = {"schema": SCHEMA, "bundle": manifest["bundle_id"], "profile": manifest["profile"],
               "target": manifest["target"], "batch": manifest["batch"], "threads": args.threads, "space": manifest["space"],
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device_info(), "models": []}
    failed = errors = 0
    for model in manifest["models"]:
        if wanted and model["id"] not in wanted:
            continue
        sys.stderr.write("measuring %s '%s' (%s %s)\n" % (model["id"], model["config"], model["format"], model["precision"]))
        try:
            entry = measure_model(model, manifest, samples, args)
            failed += not entry["passed"]
            sys.stderr.write("  p50 %.4f ms, p90 %.4f ms, p99 %.4f ms; max abs diff %.3g, top-1 agreement %.4f, accuracy %.4f (%s %s)%s\n" % (
                entry["latency"]["p50_ms"], entry["latency"]["p90_ms"], entry["latency"]["p99_ms"], entry["parity"]["max_abs_diff"],
                entry["parity"]["top1_agreement"], entry["accuracy"]["artifact"], entry["backend"], entry["runtime_version"],
                "" if entry["passed"] else "; GATE FAILED"))
        except Exception as e:
            errors += 1
            entry = {"id": model["id"], "role": model["role"], "config": model["config"], "error": "%s: %s" % (type(e).__name__, e),
                     "traceback": None if isinstance(e, Missing) or getattr(e, "quiet", False) else traceback.format_exc()}
            sys.stderr.write("  not measured: %s\n" % entry["error"])
        results["models"].append(entry)
    results["clocks_after"] = clocks()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_atomic(args.out, (json.dumps(results, indent=1) + "\n").encode("utf-8"))
    sys.stderr.write("wrote %s: %d models, %d failed a gate, %d not measured\n" % (args.out, len(results["models"]) - errors, failed, errors))
    return 1 if errors else (2 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
