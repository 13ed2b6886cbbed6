"""API double of the TensorRT 8.2 Python bindings (JetPack 4.6: Jetson Nano, Python 3.6).

Transcribed from NVIDIA/TensorRT, release/8.2: python/src/infer/pyCore.cpp (stored version of
commit 052281f0ab795b6c1a19047dc8a449cd397995a9: ``max_workspace_size``, no memory pools, no named
tensor API), python/src/infer/pyFoundationalTypes.cpp (DataType FLOAT, HALF, INT8, INT32, BOOL),
python/src/infer/pyInt8.cpp (IInt8EntropyCalibrator2), python/src/parsers/pyOnnx.cpp and
python/packaging/tensorrt/__init__.py (``nptype``, which maps BOOL to ``np.bool``). Only a subset
of the release is bound: a name outside it raises AttributeError even where 8.2 has it, so a test
never passes on a name nobody transcribed. Execution: bindings + ``execute_async_v2``.
"""

from . import _base, _core

__version__ = _core.version("8.2.1.8")

ILogger, Logger, OnnxParser, ITimingCache, INetworkDefinition = (_base.ILogger, _base.Logger, _base.OnnxParser,
                                                                 _base.ITimingCache, _base.INetworkDefinition)
DataType = _base.enum("DataType", _base.DATATYPES_8, False)
BuilderFlag = _base.enum("BuilderFlag", ("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES", "REFIT",
                                         "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE",
                                         "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                                         "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS"), True)
NetworkDefinitionCreationFlag = _base.enum("NetworkDefinitionCreationFlag", ("EXPLICIT_BATCH",
                                                                             "EXPLICIT_PRECISION"), True)


class IInt8EntropyCalibrator2(_base.CalibratorBase):
    pass


class IBuilderConfig(_base.BuilderConfigBase):
    __slots__ = ()
    _flag_enum = BuilderFlag

    @property
    def max_workspace_size(self):
        return self._workspace or 0

    @max_workspace_size.setter
    def max_workspace_size(self, value):
        _core.log("max_workspace_size", value=int(value))
        self._workspace = int(value)

    int8_calibrator = _base.int8_calibrator


class Builder(_base.BuilderBase):
    """8.2 has implicit batch too: an ONNX network must be created with EXPLICIT_BATCH."""

    __slots__ = ()
    _release, _config_class = __version__, IBuilderConfig

    platform_has_fast_fp16 = _base.platform_has_fast_fp16

    def _network_check(self, network):
        explicit = network._flags & (1 << int(NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        return "" if explicit else "ONNX networks need the EXPLICIT_BATCH flag in TensorRT 8.2"


class IExecutionContext(object):
    __slots__ = ("_engine",)

    def __init__(self, engine):
        self._engine = engine

    execute_v2 = _base.execute_v2

    def execute_async_v2(self, bindings, stream_handle, input_consumed=None):
        _base.check_addresses(bindings, self._engine._tensors, "execute_async_v2")
        return _base.executed("execute_async_v2", stream_handle)


class ICudaEngine(_base.EngineBase):
    __slots__ = ()
    _dtype_enum = DataType

    @property
    def num_bindings(self):
        return len(self._tensors)

    @property
    def max_batch_size(self):
        return 1

    def get_binding_name(self, index):
        return self._tensors[index][0]

    def binding_is_input(self, index):
        return self._tensors[index][3]

    def get_binding_shape(self, index):
        return self._tensors[index][1]

    def get_binding_dtype(self, index):
        return self._tensors[index][2]

    def create_execution_context(self):
        return IExecutionContext(self)


class Runtime(_base.RuntimeBase):
    __slots__ = ()
    _release, _engine_class = __version__, ICudaEngine


nptype = _base.make_nptype(DataType, (("FLOAT", "float32"), ("HALF", "float16"), ("INT8", "int8"), ("INT32", "int32"), ("BOOL", "bool")))
