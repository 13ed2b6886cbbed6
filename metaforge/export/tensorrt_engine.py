"""Build and run a TensorRT engine (imported only when ``tensorrt`` and a CUDA GPU are present).

Written against the TensorRT 8.x and 10.x Python APIs; buffers are CUDA tensors from PyTorch.
Not exercised on CPU-only CI: ``tests/test_export.py`` skips it unless ``tensorrt`` imports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metaforge.export import ExportError
from metaforge.io import atomic_write
from metaforge.targets import Target


def build_engine(onnx_path: Path, engine_path: Path, target: Target, calibration: torch.Tensor | None, cache_path: Path) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    workspace = target.workspace_mb << 20
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    else:
        config.max_workspace_size = workspace
    if target.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if target.precision == "int8":
        if calibration is None:
            raise ExportError("an int8 TensorRT engine needs calibration samples from the training split")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, calibration.numpy().astype(np.float32), engine_path.with_name("calibration.cache"))
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path}")
    atomic_write(engine_path, lambda p: p.write_bytes(bytes(serialized)))
    atomic_write(cache_path, lambda p: p.write_bytes(bytes(config.get_timing_cache().serialize())))


def _calibrator(trt, data: np.ndarray, cache_path: Path, batch: int = 32):
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.i = 0
            self.buf = torch.empty((batch, *data.shape[1:]), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names):
            if self.i + batch > len(data):
                return None
            self.buf.copy_(torch.from_numpy(data[self.i : self.i + batch]))
            self.i += batch
            return [int(self.buf.data_ptr())]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            atomic_write(cache_path, lambda p: p.write_bytes(bytes(cache)))

    return EntropyCalibrator()


def engine_runner(engine_path: Path, batch: int):
    """Normalised NCHW float32 -> logits through the engine (fixed batch, zero-padded)."""
    import tensorrt as trt

    from metaforge.export.runtime import _chunks

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)] if hasattr(engine, "num_io_tensors") else None

    def run(x: np.ndarray) -> np.ndarray:
        inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).cuda()
        if names is not None:  # TensorRT >= 8.5 tensor API
            out_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
            out = torch.empty(tuple(context.get_tensor_shape(out_name)), dtype=torch.float32, device="cuda")
            for n in names:
                context.set_tensor_address(n, int(inp.data_ptr() if n != out_name else out.data_ptr()))
            context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        else:
            out = torch.empty(tuple(engine.get_binding_shape(1)), dtype=torch.float32, device="cuda")
            context.execute_v2([int(inp.data_ptr()), int(out.data_ptr())])
        torch.cuda.synchronize()
        return out.cpu().numpy()

    return lambda x: _chunks(x, batch, run)
