"""API double of the TensorRT 10.x Python bindings (Jetson Orin / JetPack 6, desktop GPUs).

Transcribed from NVIDIA/TensorRT, release/10.x: python/src/infer/pyCore.cpp (stored 10.x version,
with ``tiling_optimization_level``: 10.8 or later; its calls used here exist in every 10.x:
``set_memory_pool_limit(pool, pool_size)``, no ``max_workspace_size``; named tensors
``num_io_tensors``/``get_tensor_name``/``get_tensor_shape``/``get_tensor_dtype``/``get_tensor_mode``,
``set_tensor_address(name, memory)``, ``execute_async_v3(stream_handle)``; no bindings API and no
``execute_async_v2``; EXPLICIT_BATCH still bound but deprecated; ``int8_calibrator`` deprecated
since 10.1), python/src/infer/pyFoundationalTypes.cpp (DataType adds UINT8, FP8, BF16, INT64, INT4)
and python/src/infer/pyInt8.cpp. Only a subset is bound: a name outside it raises AttributeError.
"""

from . import _base, _core

__version__ = _core.version("10.8.0.43")

ILogger, Logger, OnnxParser, ITimingCache, INetworkDefinition = (_base.ILogger, _base.Logger, _base.OnnxParser,
                                                                 _base.ITimingCache, _base.INetworkDefinition)
DataType = _base.enum("DataType", _base.DATATYPES_8 + ("UINT8", "FP8", "BF16", "INT64", "INT4"), False)
BuilderFlag = _base.enum("BuilderFlag", ("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT",
                                         "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE",
                                         "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                                         "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE",
                                         "EXCLUDE_LEAN_RUNTIME", "FP8", "BF16"), True)
NetworkDefinitionCreationFlag = _base.enum("NetworkDefinitionCreationFlag", ("EXPLICIT_BATCH",
                                                                             "STRONGLY_TYPED"), True)
MemoryPoolType = _base.enum("MemoryPoolType", ("WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                               "DLA_GLOBAL_DRAM", "TACTIC_DRAM", "TACTIC_SHARED_MEMORY"), True)
TensorIOMode = _base.enum("TensorIOMode", ("NONE", "INPUT", "OUTPUT"), False)
ExecutionContextAllocationStrategy = _base.enum("ExecutionContextAllocationStrategy", ("STATIC",
                                                                                       "ON_PROFILE_CHANGE",
                                                                                       "USER_MANAGED"), True)


class IInt8EntropyCalibrator2(_base.CalibratorBase):
    pass


def set_memory_pool_limit(self, pool, pool_size):
    if not isinstance(pool, MemoryPoolType):
        raise TypeError("set_memory_pool_limit(): incompatible function arguments")
    _core.log("set_memory_pool_limit", pool=pool.name, pool_size=int(pool_size))
    self._workspace = int(pool_size)


class IBuilderConfig(_base.BuilderConfigBase):
    __slots__ = ()
    _flag_enum = BuilderFlag
    set_memory_pool_limit = set_memory_pool_limit

    int8_calibrator = _base.int8_calibrator


class Builder(_base.BuilderBase):
    __slots__ = ()
    _release, _config_class = __version__, IBuilderConfig

    platform_has_fast_fp16 = _base.platform_has_fast_fp16


class IExecutionContext(object):
    """Named tensors: every I/O tensor needs set_tensor_address before execute_async_v3."""

    __slots__ = ("_engine", "_addresses")

    def __init__(self, engine):
        self._engine, self._addresses = engine, {}

    def set_tensor_address(self, name, memory):
        if name not in [t[0] for t in self._engine._tensors]:
            return False
        self._addresses[name] = memory
        return True

    def get_tensor_address(self, name):
        return self._addresses.get(name, 0)

    execute_v2 = _base.execute_v2

    def execute_async_v3(self, stream_handle):
        _base.check_addresses([self._addresses.get(t[0]) for t in self._engine._tensors], self._engine._tensors, "execute_async_v3")
        return _base.executed("execute_async_v3", stream_handle)


class ICudaEngine(_base.EngineBase):
    __slots__ = ()
    _dtype_enum = DataType
    _io_mode = TensorIOMode

    @property
    def num_io_tensors(self):
        return len(self._tensors)

    def _tensor(self, name):
        for t in self._tensors:
            if t[0] == name:
                return t
        raise RuntimeError("no tensor named %s" % name)

    def get_tensor_name(self, index):
        return self._tensors[index][0]

    def get_tensor_shape(self, name):
        return self._tensor(name)[1]

    def get_tensor_dtype(self, name):
        return self._tensor(name)[2]

    def get_tensor_mode(self, name):
        return self._io_mode.INPUT if self._tensor(name)[3] else self._io_mode.OUTPUT

    def create_execution_context(self, strategy=ExecutionContextAllocationStrategy.STATIC):
        return IExecutionContext(self)


class Runtime(_base.RuntimeBase):
    __slots__ = ()
    _release, _engine_class = __version__, ICudaEngine


nptype = _base.make_nptype(DataType, (("FLOAT", "float32"), ("HALF", "float16"), ("INT8", "int8"), ("INT32", "int32"),
                                                 ("BOOL", "bool_"), ("UINT8", "uint8"), ("INT64", "int64")))
