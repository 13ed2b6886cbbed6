"""The bundle runner's runtimes: onnxruntime, tflite_runtime / ai_edge_litert and TensorRT behind one
feed / invoke / fetch interface, and the choice among them.

Shipped beside run.py in every bundle (like trt_device.py), so it keeps run.py's constraints: Python 3.6,
numpy and whichever runtime the device has; nothing from metaforge.
"""

import os
import sys

import numpy as np

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


def write_atomic(path, data):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
