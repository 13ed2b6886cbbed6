"""API double of the TensorRT 11.0 Python bindings: strongly typed networks only.

NVIDIA/TensorRT's release/11.0 python/src/infer/pyCore.cpp is not among the sources this project
could read, so this double is the 10.x double (trt10.py, release/10.x pyCore.cpp) less what the
TensorRT 11.0.0 documentation, "Migrating Python Code from TensorRT 10.x to 11.x" (removed Python
APIs), lists as removed: BuilderFlag FP16, INT8, FP8, BF16, INT4, FP4, OBEY/PREFER_PRECISION_CONSTRAINTS
and DIRECT_IO; IBuilderConfig.int8_calibrator, the calibration profile and quantisation flags; the
IInt8*Calibrator classes; Builder.platform_has_fast_fp16/int8; and NetworkDefinitionCreationFlag
EXPLICIT_BATCH (strong typing is always on). Precision comes from the ONNX (fp16 tensors, QDQ).
"""

from . import _base, _core, trt10 as _trt10

__version__ = _core.version("11.0.0.12")

ILogger, Logger, OnnxParser, ITimingCache, INetworkDefinition = (_base.ILogger, _base.Logger, _base.OnnxParser,
                                                                 _base.ITimingCache, _base.INetworkDefinition)
DataType, MemoryPoolType, TensorIOMode = _trt10.DataType, _trt10.MemoryPoolType, _trt10.TensorIOMode
ExecutionContextAllocationStrategy, IExecutionContext, ICudaEngine = (_trt10.ExecutionContextAllocationStrategy,
                                                                      _trt10.IExecutionContext, _trt10.ICudaEngine)
nptype = _trt10.nptype


BuilderFlag = _base.enum("BuilderFlag", ("DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE",
                                         "SPARSE_WEIGHTS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"), True)
NetworkDefinitionCreationFlag = _base.enum("NetworkDefinitionCreationFlag", ("PREFER_AOT_PYTHON_PLUGINS",
                                                                             "PREFER_JIT_PYTHON_PLUGINS"), True)


class IBuilderConfig(_base.BuilderConfigBase):
    __slots__ = ()
    _flag_enum = BuilderFlag
    set_memory_pool_limit = _trt10.set_memory_pool_limit


class Builder(_base.BuilderBase):
    __slots__ = ()
    _release, _config_class = __version__, IBuilderConfig

    def _network_check(self, network):
        return "" if network._flags == 0 else "TensorRT 11 networks take no creation flags for ONNX (got %d)" % network._flags


class Runtime(_base.RuntimeBase):
    __slots__ = ()
    _release, _engine_class = __version__, ICudaEngine
