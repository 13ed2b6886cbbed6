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
BACKENDS = {"onnx": ("onnxruntime",), "tflite": ("tflite_runtime", "ai_edge_litert"), "tensorrt": ("tensorrt",)}


class Missing(Exception):
    """A module the backend needs is not installed on this device."""


class OrtBackend(object):
    name = "onnxruntime"

    def __init__(self, model, path, threads, bundle):
        try:
            import onnxruntime as ort
        except ImportError:
            raise Missing("onnxruntime is not installed")
        self.version = ort.__version__
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        level = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level[bundle.get("ort_optimization") or "all"])
        kw = {"providers": ["CPUExecutionProvider"]} if hasattr(ort, "get_available_providers") else {}
        self.session = ort.InferenceSession(path, opts, **kw)
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.batch = inp.shape[0] if isinstance(inp.shape[0], int) else int(model.get("batch") or 1)
        self.feed_dict, self.out = None, None

    def feed(self, x):
        self.feed_dict = {self.input: np.ascontiguousarray(x, dtype=np.float32)}

    def invoke(self):
        self.out = self.session.run(None, self.feed_dict)[0]

    def fetch(self):
        return np.asarray(self.out, dtype=np.float32)


class TfliteBackend(object):
    def __init__(self, model, path, threads, bundle, module):
        try:
            if module == "tflite_runtime":
                import tflite_runtime as pkg
                from tflite_runtime.interpreter import Interpreter
            else:
                import ai_edge_litert as pkg
                from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise Missing(module + " is not installed")
        self.name, self.version = module, getattr(pkg, "__version__", "unknown")
        try:
            self.interp = Interpreter(model_path=path, num_threads=threads or None)
        except TypeError:  # very old tflite_runtime without num_threads
            self.interp = Interpreter(model_path=path)
        self.interp.allocate_tensors()
        self.inp, self.outd = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.batch = int(self.inp["shape"][0])
        self.nhwc = model.get("layout") == "NHWC"

    def feed(self, x):
        if self.nhwc:
            x = x.transpose(0, 2, 3, 1)
        dtype = self.inp["dtype"]
        if dtype in (np.int8, np.uint8):  # full-integer model: quantise with the file's own scale
            scale, zero = self.inp["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        self.interp.set_tensor(self.inp["index"], np.ascontiguousarray(x, dtype=dtype))

    def invoke(self):
        self.interp.invoke()

    def fetch(self):
        y = self.interp.get_tensor(self.outd["index"])
        if self.outd["dtype"] in (np.int8, np.uint8):
            scale, zero = self.outd["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)


def trt_device():
    """trt_device.py, shipped beside run.py: TensorRT 8/10/11 and CUDA memory (imported only for TensorRT)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import trt_device as td
    return td


class TrtBackend(object):
    """Builds the engine from the bundled ONNX (once per TensorRT version; reused after), or loads the
    engine shipped in the bundle when it was built with this device's exact TensorRT version. The
    timing cache beside run.py is named by TensorRT version. Timed: execute + stream sync, with the
    input already on the GPU. The per-release calls are in trt_device.py."""

    name = "tensorrt"

    def __init__(self, model, path, threads, bundle, rebuild=False):
        try:
            import tensorrt as trt
        except ImportError:
            raise Missing("tensorrt (Python bindings) is not installed")
        td = trt_device()
        try:
            self.open(td, trt, model, path, bundle, rebuild)
        except td.Missing as e:
            raise Missing(str(e))

    def open(self, td, trt, model, path, bundle, rebuild):
        self.api = td.TrtApi(trt)
        self.version = self.api.version
        logger = trt.Logger(trt.Logger.WARNING)
        precision = model.get("precision", "fp32")
        folder = os.path.dirname(path)
        engine_path = os.path.join(folder, "model.%s.trt%s.engine" % (precision, self.version))
        self.notes, self.build_s = [], None
        shipped = model.get("engine") or {}
        if shipped.get("tensorrt_version") == self.version and not rebuild:
            engine_path = os.path.join(HERE, shipped["file"])
            self.notes.append("engine shipped in the bundle (built with TensorRT %s on the host)" % self.version)
        else:
            if shipped:
                self.notes.append("shipped engine not used: built with TensorRT %s, this device has %s"
                                  % (shipped.get("tensorrt_version"), self.version))
            if rebuild or not os.path.isfile(engine_path):
                self.build(td, logger, onnx_file(path), engine_path, precision, bundle)
        self.session = td.Session(self.api, logger, td.read_bytes(engine_path), engine_path)
        self.engine_file = os.path.relpath(engine_path, HERE)
        self.batch = self.session.batch

    def build(self, td, logger, onnx_path, engine_path, precision, bundle):
        workspace = int(bundle["target"].get("workspace_mb") or 256) << 20
        cache_path = os.path.join(HERE, td.cache_name(self.version))
        blob = td.read_bytes(cache_path) if os.path.isfile(cache_path) else b""
        engine, cache, notes, self.build_s = td.build_serialized(self.api, logger, td.read_bytes(onnx_path), precision, workspace, blob)
        write_atomic(engine_path, engine)
        write_atomic(cache_path, cache)
        self.notes += notes + ["engine built here from %s in %.1f s (%s); timing cache saved to %s"
                               % (os.path.basename(onnx_path), self.build_s, precision, os.path.basename(cache_path))]

    def feed(self, x):
        self.session.feed(x)

    def invoke(self):
        self.session.invoke()

    def fetch(self):
        return self.session.fetch()


def onnx_file(path):
    """The ONNX of a model: its file, or model.onnx beside it (older bundles built on a host with TensorRT recorded model.engine)."""
    return path if path.endswith(".onnx") else os.path.join(os.path.dirname(path), "model.onnx")


def open_backend(model, manifest, choice, threads, rebuild):
    """The first runtime of the model's format that imports here (or the one asked for)."""
    path = os.path.join(HERE, model["file"])
    names = [choice] if choice != "auto" else list(BACKENDS[model["format"]])
    missing = []
    for name in names:
        try:
            if name == "onnxruntime":
                return OrtBackend(model, onnx_file(path), threads, manifest), missing
            if name in ("tflite_runtime", "ai_edge_litert"):
                return TfliteBackend(model, path, threads, manifest, name), missing
            if name == "tensorrt":
                return TrtBackend(model, path, threads, manifest, rebuild), missing
            raise Missing("unknown backend " + name)
        except Missing as e:
            missing.append(str(e))
    raise Missing("; ".join(missing))


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


def write_atomic(path, data):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


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
