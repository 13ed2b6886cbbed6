"""Classes every supported TensorRT release binds the same way (Logger, OnnxParser, timing cache,
Runtime, the builder's common calls), specialised by the per-release modules trt82, trt10, trt11.

Each class has ``__slots__``, so setting an attribute the release does not bind raises
AttributeError, and methods carry the bindings' argument names (``bindings``, ``stream_handle``,
``serialized_timing_cache``...), so a wrong keyword raises TypeError, as pybind11 does.
Python 3.6 compatible.
"""

import enum as _enum

from . import _core


DATATYPES_8 = ("FLOAT", "HALF", "INT8", "INT32", "BOOL")  # pyFoundationalTypes.cpp, release/8.2


def enum(name, members, arithmetic):
    """A pybind11 enum with these members in declaration order (``py::arithmetic``: int() works)."""
    return (_enum.IntEnum if arithmetic else _enum.Enum)(name, [(m, i) for i, m in enumerate(members)])


class Severity(_enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger(object):
    __slots__ = ()
    Severity = Severity
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (Severity.INTERNAL_ERROR, Severity.ERROR, Severity.WARNING,
                                                     Severity.INFO, Severity.VERBOSE)  # export_values()

    def log(self, severity, msg):
        pass


class Logger(ILogger):
    __slots__ = ("min_severity",)

    def __init__(self, min_severity=Severity.WARNING):
        if not isinstance(min_severity, Severity):
            raise TypeError("Logger(): incompatible constructor arguments")
        self.min_severity = min_severity


def _check_logger(logger):
    if not isinstance(logger, ILogger):
        raise TypeError("incompatible constructor arguments: a tensorrt.ILogger is required")


class INetworkDefinition(object):
    __slots__ = ("_flags", "_graph")

    def __init__(self, flags):
        self._flags, self._graph = flags, None

    @property
    def num_inputs(self):
        return len(self._graph["inputs"]) if self._graph else 0

    @property
    def num_outputs(self):
        return len(self._graph["outputs"]) if self._graph else 0


class OnnxParser(object):
    """python/src/parsers/pyOnnx.cpp: OnnxParser(network, logger), parse(model, path=None), num_errors, get_error(index)."""

    __slots__ = ("_network", "_errors")

    def __init__(self, network, logger):
        if not isinstance(network, INetworkDefinition):
            raise TypeError("OnnxParser(): network must be a tensorrt.INetworkDefinition")
        _check_logger(logger)
        self._network, self._errors = network, []

    def parse(self, model, path=None):
        data = bytes(model)
        try:
            graph = _core.read_onnx(data)
        except (ValueError, IndexError) as e:
            self._errors.append("ModelImporter: failed to parse ONNX model: %s" % e)
            _core.log("parse", ok=False, head=data[:16].hex())
            return False
        self._network._graph = graph
        _core.log("parse", ok=True, ops=graph["ops"])
        return True

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]


class ITimingCache(object):
    __slots__ = ("_release",)

    def __init__(self, release):
        self._release = release

    def serialize(self):
        return _core.HostMemory(_core.cache_blob(self._release))

    def combine(self, input_cache, ignore_mismatch):
        return input_cache._release == self._release or bool(ignore_mismatch)

    def reset(self):
        return True


class BuilderConfigBase(object):
    """set_flag/get_flag/clear_flag, create_timing_cache(serialized_timing_cache), set_timing_cache(cache, ignore_mismatch)."""

    __slots__ = ("_flags", "_cache", "_release", "_calibrator", "_workspace")
    _flag_enum = None  # the release's BuilderFlag

    def __init__(self, release):
        self._flags, self._cache, self._release, self._calibrator, self._workspace = set(), None, release, None, None

    def set_flag(self, flag):
        if not isinstance(flag, self._flag_enum):
            raise TypeError("set_flag(): incompatible function arguments")
        _core.log("set_flag", flag=flag.name)
        self._flags.add(flag.name)

    def get_flag(self, flag):
        return flag.name in self._flags

    def clear_flag(self, flag):
        self._flags.discard(flag.name)

    def create_timing_cache(self, serialized_timing_cache):
        blob = bytes(serialized_timing_cache)
        release = blob[len(_core.CACHE_MAGIC):].decode("utf-8") if blob.startswith(_core.CACHE_MAGIC) else self._release
        if blob and not blob.startswith(_core.CACHE_MAGIC):
            return None
        return ITimingCache(release)

    def set_timing_cache(self, cache, ignore_mismatch):
        ok = not _core.fails("timing_cache") and (cache._release == self._release or bool(ignore_mismatch))
        _core.log("set_timing_cache", ok=ok, cache_release=cache._release, ignore_mismatch=bool(ignore_mismatch))
        if ok:
            self._cache = cache
        return ok

    def get_timing_cache(self):
        return self._cache


class BuilderBase(object):
    """Builder(logger): create_network(flags=0), create_builder_config(), build_serialized_network(network, config)."""

    __slots__ = ("_logger",)
    _release = None
    _config_class = None

    def __init__(self, logger):
        _check_logger(logger)
        self._logger = logger

    def create_network(self, flags=0):
        _core.log("create_network", flags=int(flags))
        return INetworkDefinition(int(flags))

    def create_builder_config(self):
        return self._config_class(self._release)

    def _network_check(self, network):
        """The release's own rule for the network flags; "" when the network is acceptable."""
        return ""

    def build_serialized_network(self, network, config):
        graph = network._graph
        problem = self._network_check(network) or ("" if graph else "the network is empty (nothing parsed)")
        if not problem and any(d < 0 for t in graph["inputs"] for d in t["shape"]):
            problem = "dynamic input shapes need an optimization profile"
        if not problem and config._calibrator is not None:
            problem = _calibrate(config._calibrator, graph)
        if not problem and "INT8" in config._flags and "QuantizeLinear" not in graph["ops"]:
            _core.log("warning", msg="INT8 flag without QDQ nodes or a calibrator: missing scales, layers run in higher precision")
        _core.log("build", ok=not problem, problem=problem, flags=sorted(config._flags), workspace=config._workspace)
        if problem:
            return None
        return _core.HostMemory(_core.pack_engine(self._release, graph, sorted(config._flags)))


def _calibrate(calibrator, graph):
    """TensorRT's implicit calibration as seen from Python: batches until get_batch returns None."""
    batch = calibrator.get_batch_size()
    names = [t["name"] for t in graph["inputs"]]
    n = 0
    while calibrator.get_batch(names) is not None:
        n += 1
    network_batch = graph["inputs"][0]["shape"][0]
    _core.log("calibration", calibrator_batch=batch, batches=n, network_batch=network_batch,
              samples_read=n * network_batch)
    return "" if n else "calibration failure: no batches (no scaling factors)"


class RuntimeBase(object):
    """Runtime(logger): deserialize_cuda_engine(serialized_engine) -> ICudaEngine or None."""

    __slots__ = ("_logger",)
    _release = None
    _engine_class = None

    def __init__(self, logger):
        _check_logger(logger)
        self._logger = logger

    def deserialize_cuda_engine(self, serialized_engine):
        record = _core.unpack_engine(serialized_engine, self._release)
        _core.log("deserialize", ok=record is not None)
        return None if record is None else self._engine_class(record)


class EngineBase(object):
    """The engine record's I/O as (name, shape, DataType, is_input); the release's class adds its accessors."""

    __slots__ = ("_record", "_tensors")
    _dtype_enum = None

    def __init__(self, record):
        self._record = record
        g = record["graph"]
        self._tensors = [(t["name"], tuple(t["shape"]), getattr(self._dtype_enum, t["dtype"]), is_input)
                         for ts, is_input in ((g["inputs"], True), (g["outputs"], False)) for t in ts]

    @property
    def num_layers(self):
        return len(self._record["graph"]["ops"])


def check_addresses(addresses, tensors, call):
    if len(addresses) != len(tensors) or not all(isinstance(a, int) and a > 0 for a in addresses):
        raise RuntimeError("%s: every I/O tensor needs a device address (%d given for %d)" % (call, len(addresses), len(tensors)))


def executed(call, stream_handle):
    if not isinstance(stream_handle, int):
        raise TypeError("%s(): stream_handle must be an int" % call)
    ok = not _core.fails("execute")
    _core.log(call, ok=ok)
    return ok


def make_nptype(dtype_enum, numpy_names):
    """tensorrt.nptype as python/packaging/tensorrt/__init__.py writes it: a dict of numpy types built
    on every call (on 8.2 it names ``np.bool``, so it raises AttributeError on numpy 1.24 to 1.26)."""

    def nptype(trt_type):
        _core.log("nptype")
        import numpy as np

        mapping = dict((getattr(dtype_enum, k), getattr(np, v)) for k, v in numpy_names)
        if trt_type in mapping:
            return mapping[trt_type]
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")

    return nptype


def _get_calibrator(self):
    return self._calibrator


def _set_calibrator(self, value):
    _core.log("int8_calibrator", set=value is not None)
    self._calibrator = value


int8_calibrator = property(_get_calibrator, _set_calibrator)  # IBuilderConfig, 8.x and 10.x only
platform_has_fast_fp16 = property(lambda self: True)  # Builder, 8.x and 10.x only


def execute_v2(self, bindings):
    """IExecutionContext.execute_v2(bindings): synchronous, every release."""
    check_addresses(bindings, self._engine._tensors, "execute_v2")
    return executed("execute_v2", 0)


class CalibratorBase(object):
    """pyInt8.cpp: the Python calibrators subclass this and override get_batch_size/get_batch/...."""

    def __init__(self):
        pass

    def get_batch_size(self):
        raise RuntimeError("get_batch_size() is pure virtual")

    def get_batch(self, names):
        raise RuntimeError("get_batch() is pure virtual")

    def read_calibration_cache(self):
        return None

    def write_calibration_cache(self, cache):
        pass
