"""API double of the TensorRT 11.0 Python bindings: strongly typed networks only.

Sources, and what each one settled (11.0 GA is NVIDIA/TensorRT commit 771d8efdf7f9d7b1eeb0864eb05d4dd8a7755bb5,
include/NvInferVersion.h there: 11.0.0.114, GA; the GitHub release page v11.0 names the same commit):

- Read at that commit: python/src/parsers/pyOnnx.cpp -- ``OnnxParser(network, logger)``,
  ``parse(model, path=None)``, ``num_errors``, ``get_error(index)`` (as _base.OnnxParser binds them).
- NOT readable here: python/src/infer/pyCore.cpp, pyFoundationalTypes.cpp and pyInt8.cpp of any 11.x
  commit. The stored index holds pyCore.cpp (36 versions) and pyFoundationalTypes.cpp (16), but not
  at 771d8efd (11.0.0.114) nor at d5883286a711a1c2ed3064c3036d99d8eb7f9682 (11.1.0.106), the two
  11.x commits found; the calls below that come from pyCore.cpp are therefore the 10.x double's
  (trt10.py), less what "Removed Python APIs and Replacements" (TensorRT 10.x to 11.x migration
  guide) lists: BuilderFlag FP16, INT8, FP8, BF16, INT4, FP4, OBEY/PREFER_PRECISION_CONSTRAINTS,
  DIRECT_IO; IBuilderConfig.int8_calibrator, the calibration profile and quantisation flags; the
  IInt8*Calibrator classes; Builder.platform_has_fast_fp16/int8; ICudaEngine.device_memory_size*.
  Two pages of NVIDIA's TensorRT 11.0.0 Python API reference, which is generated from these bindings
  (docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/python-api/), confirm part of it:
  infer/Core/Builder.html -- NetworkDefinitionCreationFlag is STRONGLY_TYPED ("[DEPRECATED] ... always
  enabled ... retained for API compatibility but is ignored"), PREFER_AOT_PYTHON_PLUGINS,
  PREFER_JIT_PYTHON_PLUGINS, no EXPLICIT_BATCH; Builder(logger), no platform_has_tf32 / fast_fp16 /
  fast_int8; infer/Core/Engine.html -- TensorIOMode NONE/INPUT/OUTPUT, num_io_tensors, num_layers, no
  device_memory_size. NOT confirmed for 11.0 by any source read here (10.x names, not listed as
  removed): IBuilderConfig's set_flag/create_timing_cache/set_timing_cache/set_memory_pool_limit,
  MemoryPoolType, DataType, ITimingCache, Runtime, and IExecutionContext's set_tensor_address /
  execute_async_v3 / execute_v2 (11.4.0's reference still documents execute_v2). The enum values are
  declaration indices, not transcribed.
  Only a subset is bound: a name outside it raises AttributeError. Precision comes from the ONNX
  (fp16 tensors, QDQ), never from a builder flag.
"""

from . import _base, _core, trt10 as _trt10

__version__ = _core.version("11.0.0.114")  # include/NvInferVersion.h at 771d8efd

ILogger, Logger, OnnxParser, ITimingCache, INetworkDefinition = (_base.ILogger, _base.Logger, _base.OnnxParser,
                                                                 _base.ITimingCache, _base.INetworkDefinition)
DataType, MemoryPoolType, TensorIOMode = _trt10.DataType, _trt10.MemoryPoolType, _trt10.TensorIOMode
ExecutionContextAllocationStrategy, IExecutionContext, ICudaEngine = (_trt10.ExecutionContextAllocationStrategy,
                                                                      _trt10.IExecutionContext, _trt10.ICudaEngine)
nptype = _trt10.nptype


BuilderFlag = _base.enum("BuilderFlag", ("DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE",
                                         "SPARSE_WEIGHTS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"), True)
# STRONGLY_TYPED is still bound in 11.0 (deprecated and ignored: every network is strongly typed)
NetworkDefinitionCreationFlag = _base.enum("NetworkDefinitionCreationFlag", ("STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS",
                                                                             "PREFER_JIT_PYTHON_PLUGINS"), True)
_KNOWN_NETWORK_FLAGS = sum(1 << int(f) for f in NetworkDefinitionCreationFlag)


class IBuilderConfig(_base.BuilderConfigBase):
    __slots__ = ()
    _flag_enum = BuilderFlag
    set_memory_pool_limit = _trt10.set_memory_pool_limit


class Builder(_base.BuilderBase):
    __slots__ = ()
    _release, _config_class = __version__, IBuilderConfig

    def _network_check(self, network):
        # 11.0 has no EXPLICIT_BATCH bit to set; STRONGLY_TYPED is accepted and ignored
        unknown = network._flags & ~_KNOWN_NETWORK_FLAGS
        return "" if not unknown else "TensorRT 11 has no network creation flag with bits %d" % unknown


class Runtime(_base.RuntimeBase):
    __slots__ = ()
    _release, _engine_class = __version__, ICudaEngine
