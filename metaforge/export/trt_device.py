"""TensorRT 8.x / 10.x / 11.x and CUDA memory for run.py and metaforge.export.tensorrt_engine.

Copied into every bundle beside run.py, so it needs only Python 3.6 (JetPack 4.6), numpy and the
device's TensorRT bindings with pycuda or cuda-python; no type hints, f-strings with ``=``, walrus
or dataclasses. The calls that differ between TensorRT majors live in :class:`TrtApi`, chosen once
from ``tensorrt.__version__``, so a release's removals fail here with one line instead of an
AttributeError deep in a build:

- 8.x: EXPLICIT_BATCH network flag; ``max_workspace_size`` before 8.4; BuilderFlag FP16/INT8;
  bindings + ``execute_async_v2``.
- 10.x: explicit batch only (no flag); ``set_memory_pool_limit``; BuilderFlag FP16/INT8; named
  tensors + ``set_tensor_address`` + ``execute_async_v3``.
- 11.x: strongly typed only: no precision flags, no calibrator, no EXPLICIT_BATCH (STRONGLY_TYPED is
  still bound but ignored, so no flag is passed); the precision is the ONNX's own (fp16 tensors,
  QuantizeLinear/DequantizeLinear for int8). Checked against tests/trt_api/trt11.py, whose docstring
  says which 11.0 sources were read and which could not be.

int8 is explicit quantisation everywhere (a QDQ ONNX calibrated on the host): no device-side
calibrator, so no calibration batch can disagree with the network's batch, and an ONNX without
QDQ nodes is refused rather than built with made-up scales.
"""

import time

import numpy as np

SUPPORTED = "TensorRT 8.x (8.2 or later), 10.x or 11.x"

# Own dtype maps: trt.nptype uses np.bool on TensorRT <= 8.4, which numpy >= 1.24 removed.
DTYPES = {
    8: {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "BOOL": "bool"},
    10: {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "BOOL": "bool",
         "UINT8": "uint8", "INT64": "int64"},
    11: {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "BOOL": "bool",
         "UINT8": "uint8", "INT64": "int64"},
}
QDQ_OPS = (b"QuantizeLinear", b"DequantizeLinear")


class Missing(Exception):
    """A module the backend needs is not installed on this device."""


class Unsupported(Exception):
    """This device's TensorRT is a release the runner does not drive (reported in one line, no traceback)."""

    quiet = True


def major_of(version):
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


class TrtApi(object):
    """One TensorRT release's calls: network flags, precision, workspace, I/O, execution, dtypes."""

    def __init__(self, trt):
        self.trt, self.version = trt, trt.__version__
        self.major = major_of(self.version)
        if self.major not in DTYPES:
            raise Unsupported("TensorRT %s is not supported: run.py drives %s; install one of those" % (self.version, SUPPORTED))
        self.dtypes = dict((getattr(trt.DataType, k), np.dtype(v)) for k, v in DTYPES[self.major].items())

    def nptype(self, dtype):
        if dtype not in self.dtypes:
            raise RuntimeError("TensorRT %s engine tensor of type %s has no numpy type here; export the model with float32 I/O" % (self.version, dtype))
        return self.dtypes[dtype]

    def network_flags(self):
        if self.major == 8:
            return 1 << int(self.trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        return 0  # 10: explicit batch is the only mode; 11: the flag no longer exists

    def configure(self, builder, config, precision, workspace):
        """Workspace and precision flags; returns notes for the results."""
        trt, notes = self.trt, []
        if self.major == 8 and not hasattr(config, "set_memory_pool_limit"):  # 8.2, 8.3
            config.max_workspace_size = workspace
        else:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        if self.major == 11:
            if precision != "fp32":
                notes.append("TensorRT 11 is strongly typed: %s comes from the ONNX itself, no builder flag" % precision)
            return notes
        if precision == "fp16":
            if not builder.platform_has_fast_fp16:
                notes.append("this GPU has no fast fp16; TensorRT may choose fp32 kernels")
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)  # explicit quantisation: the QDQ nodes carry the scales
        return notes

    def io(self, engine):
        """(name, shape, numpy dtype, is_input) of every engine I/O tensor, in engine order."""
        out = []
        if self.major == 8:
            for i in range(engine.num_bindings):
                out.append((engine.get_binding_name(i), tuple(int(d) for d in engine.get_binding_shape(i)),
                            self.nptype(engine.get_binding_dtype(i)), bool(engine.binding_is_input(i))))
            return out
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            out.append((name, tuple(int(d) for d in engine.get_tensor_shape(name)), self.nptype(engine.get_tensor_dtype(name)),
                        engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT))
        return out

    def bind(self, context, name, address):
        if self.major != 8 and not context.set_tensor_address(name, address):
            raise RuntimeError("TensorRT %s refused the address of tensor %s" % (self.version, name))

    def execute(self, context, bindings, stream):
        if self.major == 8:
            ok = context.execute_async_v2(bindings=bindings, stream_handle=stream)
        else:
            ok = context.execute_async_v3(stream_handle=stream)
        if not ok:
            raise RuntimeError("TensorRT %s execution failed (execute_async_v%d returned False); see the log above"
                               % (self.version, 2 if self.major == 8 else 3))


def cache_name(version):
    """Timing caches are only valid for the TensorRT version that wrote them: one file per version."""
    return "timing.trt%s.cache" % version


def build_serialized(api, logger, onnx_bytes, precision, workspace, cache_blob):
    """(engine bytes, timing cache bytes, notes, build seconds) from ONNX bytes."""
    trt = api.trt
    if not onnx_bytes.startswith(b"\x08"):  # ModelProto field 1 (ir_version) comes first
        raise RuntimeError("the model file is not an ONNX model; run.py builds engines from the bundle's model.onnx")
    if precision == "int8" and not all(op in onnx_bytes for op in QDQ_OPS):
        raise RuntimeError("int8 needs a QDQ ONNX (QuantizeLinear/DequantizeLinear calibrated on the host); "
                           "this one has none: re-export the model with an int8 target")
    builder = trt.Builder(logger)
    network = builder.create_network(api.network_flags())
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError("TensorRT %s cannot parse the ONNX: %s" % (api.version, errors))
    config = builder.create_builder_config()
    notes = api.configure(builder, config, precision, workspace)
    if not config.set_timing_cache(config.create_timing_cache(cache_blob), False):
        raise RuntimeError("TensorRT %s refused the timing cache (another GPU?); delete %s and rerun" % (api.version, cache_name(api.version)))
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = round(time.perf_counter() - t0, 2)
    if serialized is None:
        raise RuntimeError("TensorRT %s failed to build the engine (see the log above)" % api.version)
    return bytes(serialized), bytes(config.get_timing_cache().serialize()), notes, seconds


class Cuda(object):
    """Device memory and a stream: pycuda first on 8.x (JetPack's), cuda-python first on 10/11."""

    def __init__(self, major):
        order = ("pycuda", "cuda-python") if major == 8 else ("cuda-python", "pycuda")
        for kind in order:
            if self._open(kind):
                return
        raise Missing("TensorRT needs pycuda or cuda-python for device memory; neither is installed "
                      "(JetPack: sudo apt-get install python3-pycuda; elsewhere: pip install cuda-python)")

    def _open(self, kind):
        try:
            if kind == "pycuda":
                import pycuda.driver as drv
                import pycuda.autoinit  # noqa: F401  (creates the context)
                self.kind, self.drv = kind, drv
                self.stream = drv.Stream()
                self.handle = self.stream.handle
                return True
            try:
                from cuda.bindings import runtime as cudart
            except ImportError:
                from cuda import cudart
        except ImportError:
            return False
        self.kind, self.rt = kind, cudart
        self.stream = self.check(cudart.cudaStreamCreate())
        self.handle = int(self.stream)
        return True

    def check(self, result):
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
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

    def copy(self, host, dev, to_device):
        if self.kind == "pycuda":
            if to_device:
                self.drv.memcpy_htod_async(dev, host, self.stream)
            else:
                self.drv.memcpy_dtoh_async(host, dev, self.stream)
        else:
            kinds = self.rt.cudaMemcpyKind
            if to_device:
                args = (dev, host.ctypes.data, host.nbytes, kinds.cudaMemcpyHostToDevice, self.stream)
            else:
                args = (host.ctypes.data, dev, host.nbytes, kinds.cudaMemcpyDeviceToHost, self.stream)
            self.check(self.rt.cudaMemcpyAsync(*args))
        self.sync()

    def sync(self):
        if self.kind == "pycuda":
            self.stream.synchronize()
        else:
            self.check(self.rt.cudaStreamSynchronize(self.stream))


class Session(object):
    """A deserialised engine with its buffers: feed one batch, run, fetch the first output."""

    def __init__(self, api, logger, engine_bytes, source):
        self.api, self.cuda = api, Cuda(api.major)
        self.engine = api.trt.Runtime(logger).deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise RuntimeError("TensorRT %s could not deserialise %s; rerun with --rebuild" % (api.version, source))
        self.context = self.engine.create_execution_context()
        self.inputs, self.outputs, self.bindings = [], [], []
        for name, shape, dtype, is_input in api.io(self.engine):
            host = self.cuda.host(shape, dtype)
            dev = self.cuda.alloc(host.nbytes)
            self.bindings.append(int(dev))
            api.bind(self.context, name, int(dev))
            (self.inputs if is_input else self.outputs).append((host, dev))
        self.batch = int(self.inputs[0][0].shape[0])

    def feed(self, x):
        host, dev = self.inputs[0]
        host[...] = x.astype(host.dtype)
        self.cuda.copy(host, dev, True)

    def invoke(self):
        self.api.execute(self.context, self.bindings, self.cuda.handle)
        self.cuda.sync()

    def fetch(self):
        host, dev = self.outputs[0]
        self.cuda.copy(host, dev, False)
        return np.array(host, dtype=np.float32)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
