#!/usr/bin/env python3
"""metaforge bundle runner: time and check the bundled models on this device, write results.json.

Copied into every bundle as ``run.py``. It needs only the device's own Python (3.6 or newer, the
Python of JetPack 4.6), numpy and one runtime: TensorRT 8.x / 10.x (the engine is built here from
the ONNX, because engines only run on the GPU and TensorRT version that built them), tflite_runtime
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


class Cuda(object):
    """Device memory and a stream through pycuda (common on JetPack) or cuda-python."""

    def __init__(self):
        try:
            import pycuda.driver as drv
            import pycuda.autoinit  # noqa: F401  (creates the context)
            self.kind, self.drv = "pycuda", drv
            self.stream = drv.Stream()
            self.handle = self.stream.handle
            return
        except ImportError:
            pass
        try:
            try:
                from cuda.bindings import runtime as cudart
            except ImportError:
                from cuda import cudart
        except ImportError:
            raise Missing("TensorRT needs pycuda or cuda-python for device memory; neither is installed "
                          "(JetPack: sudo apt-get install python3-pycuda, or pip3 install pycuda on the device)")
        self.kind, self.rt = "cuda-python", cudart
        self.stream = self.check(cudart.cudaStreamCreate())
        self.handle = int(self.stream)

    def check(self, result):
        err, rest = result[0], result[1:]
        if int(err) != 0:
            raise RuntimeError("CUDA runtime error %s" % err)
        return rest[0] if len(rest) == 1 else None

    def host(self, shape, dtype):
        if self.kind == "pycuda":
            return self.drv.pagelocked_empty(tuple(shape), dtype)
        return np.empty(tuple(shape), dtype)

    def alloc(self, nbytes):
        if self.kind == "pycuda":
            return self.drv.mem_alloc(max(1, nbytes))
        return self.check(self.rt.cudaMalloc(max(1, nbytes)))

    def htod(self, dev, host):
        if self.kind == "pycuda":
            self.drv.memcpy_htod_async(dev, host, self.stream)
        else:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self.check(self.rt.cudaMemcpyAsync(dev, host.ctypes.data, host.nbytes, kind, self.stream))

    def dtoh(self, host, dev):
        if self.kind == "pycuda":
            self.drv.memcpy_dtoh_async(host, dev, self.stream)
        else:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self.check(self.rt.cudaMemcpyAsync(host.ctypes.data, dev, host.nbytes, kind, self.stream))

    def sync(self):
        if self.kind == "pycuda":
            self.stream.synchronize()
        else:
            self.check(self.rt.cudaStreamSynchronize(self.stream))


class TrtBackend(object):
    """Builds the engine from the bundled ONNX (once; reused while the TensorRT version is the same),
    saving it and the timing cache beside the model. 8.x: bindings + execute_async_v2; >= 8.5 and
    10.x: named tensors + set_tensor_address + execute_async_v3. Timed: execute + stream sync, with
    the input already on the GPU."""

    name = "tensorrt"

    def __init__(self, model, path, threads, bundle, rebuild=False):
        try:
            import tensorrt as trt
        except ImportError:
            raise Missing("tensorrt (Python bindings) is not installed")
        self.trt, self.version = trt, trt.__version__
        self.cuda = Cuda()
        logger = trt.Logger(trt.Logger.WARNING)
        precision = model.get("precision", "fp32")
        engine_path = os.path.join(os.path.dirname(path), "model.%s.trt%s.engine" % (precision, self.version))
        self.notes, self.build_s = [], None
        if rebuild or not os.path.isfile(engine_path):
            self.build(logger, path, engine_path, precision, bundle)
        with open(engine_path, "rb") as f:
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise RuntimeError("TensorRT could not deserialize " + engine_path + "; rerun with --rebuild")
        self.context = self.engine.create_execution_context()
        self.engine_file = os.path.relpath(engine_path, HERE)
        self.tensor_api = hasattr(self.engine, "num_io_tensors")
        e, self.inputs, self.outputs, self.bindings = self.engine, [], [], []
        n = e.num_io_tensors if self.tensor_api else e.num_bindings
        for i in range(n):
            if self.tensor_api:
                name = e.get_tensor_name(i)
                shape, dtype = e.get_tensor_shape(name), trt.nptype(e.get_tensor_dtype(name))
                is_input = e.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            else:
                name = e.get_binding_name(i)
                shape, dtype, is_input = e.get_binding_shape(i), trt.nptype(e.get_binding_dtype(i)), e.binding_is_input(i)
            host = self.cuda.host([int(d) for d in shape], dtype)
            dev = self.cuda.alloc(host.nbytes)
            self.bindings.append(int(dev))
            if self.tensor_api:
                self.context.set_tensor_address(name, int(dev))
            (self.inputs if is_input else self.outputs).append((host, dev))
        self.batch = int(self.inputs[0][0].shape[0])

    def build(self, logger, onnx_path, engine_path, precision, bundle):
        trt = self.trt
        builder = trt.Builder(logger)
        flags = 0
        if int(self.version.split(".")[0]) < 10:  # explicit batch is the only mode (and the flag deprecated) in 10
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        with open(onnx_path, "rb") as f:
            if not parser.parse(f.read()):
                raise RuntimeError("TensorRT cannot parse the ONNX: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
        config = builder.create_builder_config()
        workspace = int(bundle["target"].get("workspace_mb") or 256) << 20
        if hasattr(config, "set_memory_pool_limit"):  # >= 8.4
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        else:
            config.max_workspace_size = workspace
        if precision == "fp16":
            if not getattr(builder, "platform_has_fast_fp16", True):
                self.notes.append("this GPU has no fast fp16; TensorRT may fall back to fp32 kernels")
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "int8":
            calib = os.path.join(os.path.dirname(onnx_path), "calibration.npy")
            if not os.path.isfile(calib):
                raise RuntimeError("int8 needs calibration.npy beside the model")
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = make_calibrator(trt, self.cuda, np.load(calib), engine_path + ".calib")
        cache_path = os.path.join(HERE, "timing.cache")
        blob = b""
        if os.path.isfile(cache_path):
            with open(cache_path, "rb") as f:
                blob = f.read()
        config.set_timing_cache(config.create_timing_cache(blob), False)
        t0 = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        self.build_s = round(time.perf_counter() - t0, 2)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build the engine (see the log above)")
        write_atomic(engine_path, bytes(serialized))
        write_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
        self.notes.append("engine built here in %.1f s (%s); timing cache saved to timing.cache" % (self.build_s, precision))

    def feed(self, x):
        host, dev = self.inputs[0]
        host[...] = x.astype(host.dtype)
        self.cuda.htod(dev, host)
        self.cuda.sync()

    def invoke(self):
        if self.tensor_api:
            self.context.execute_async_v3(self.cuda.handle)
        else:
            self.context.execute_async_v2(bindings=self.bindings, stream_handle=self.cuda.handle)
        self.cuda.sync()

    def fetch(self):
        host, dev = self.outputs[0]
        self.cuda.dtoh(host, dev)
        self.cuda.sync()
        return np.array(host, dtype=np.float32)


def make_calibrator(trt, cuda, data, cache_path, batch=32):
    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.i = 0
            self.host = cuda.host((batch,) + data.shape[1:], np.float32)
            self.dev = cuda.alloc(self.host.nbytes)

        def get_batch_size(self):
            return batch

        def get_batch(self, names):
            if self.i + batch > len(data):
                return None
            self.host[...] = data[self.i:self.i + batch]
            self.i += batch
            cuda.htod(self.dev, self.host)
            cuda.sync()
            return [int(self.dev)]

        def read_calibration_cache(self):
            if os.path.isfile(cache_path):
                with open(cache_path, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            write_atomic(cache_path, bytes(cache))

    return Calibrator()


def open_backend(model, manifest, choice, threads, rebuild):
    """The first runtime of the model's format that imports here (or the one asked for)."""
    path = os.path.join(HERE, model["file"])
    names = [choice] if choice != "auto" else list(BACKENDS[model["format"]])
    missing = []
    for name in names:
        try:
            if name == "onnxruntime":
                onnx = path if path.endswith(".onnx") else os.path.join(os.path.dirname(path), "model.onnx")
                return OrtBackend(model, onnx, threads, manifest), missing
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
                     "traceback": None if isinstance(e, Missing) else traceback.format_exc()}
            sys.stderr.write("  not measured: %s\n" % entry["error"])
        results["models"].append(entry)
    results["clocks_after"] = clocks()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_atomic(args.out, (json.dumps(results, indent=1) + "\n").encode("utf-8"))
    sys.stderr.write("wrote %s: %d models, %d failed a gate, %d not measured\n" % (args.out, len(results["models"]) - errors, failed, errors))
    return 1 if errors else (2 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
