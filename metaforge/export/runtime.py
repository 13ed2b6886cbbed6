"""Run an exported file in its real runtime: normalised NCHW float32 in, float32 logits out.

Each runner hides its file's conventions (NHWC layout, fixed batch, int8 quantisation of the
input and dequantisation of the output) so checks compare like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from metaforge.export import Artifact, ExportError
from metaforge.export.registry import Runner


def tool_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Versions of the tools that wrote and ran an artifact (an exporter's ``tools``, for the report)."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _chunks(x: np.ndarray, batch: int | None, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run ``x`` in pieces of the file's fixed batch, zero-padding the last piece."""
    if batch is None:
        return run(x)
    outs = []
    for i in range(0, len(x), batch):
        piece = x[i : i + batch]
        n = len(piece)
        if n < batch:
            piece = np.concatenate([piece, np.zeros((batch - n, *piece.shape[1:]), piece.dtype)])
        outs.append(run(piece)[:n])
    return np.concatenate(outs)


def onnx_runner(artifact: Artifact, threads: int | None = None) -> Runner:
    """Normalised N x C x H x W float32 -> N x K float32 logits in onnxruntime (fp16 inputs cast)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("running ONNX files needs onnxruntime: pip install 'metaforge[onnx]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(Path(artifact.path)), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"onnxruntime cannot load {artifact.path}: {str(e).splitlines()[0]}") from None
    name = session.get_inputs()[0].name
    dtype = np.float16 if "float16" in session.get_inputs()[0].type else np.float32
    batch = artifact.batch if isinstance(session.get_inputs()[0].shape[0], int) else None

    def run(x: np.ndarray) -> np.ndarray:
        return _chunks(x, batch, lambda b: session.run(None, {name: b.astype(dtype)})[0].astype(np.float32))

    return run


def tflite_runner(artifact: Artifact, threads: int | None = None) -> Runner:
    """The same in ai-edge-litert: NHWC and int8 quantisation of input and output handled here."""
    from metaforge.export.tflite import load_interpreter

    interp = load_interpreter(artifact.path, threads)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = int(inp["shape"][0])
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    nhwc = artifact.layout == "NHWC"

    def one(b: np.ndarray) -> np.ndarray:
        x = b.transpose(0, 2, 3, 1) if nhwc else b
        if inp["dtype"] in (np.int8, np.uint8):
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / in_scale) + in_zero, info.min, info.max)
        interp.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            return (y.astype(np.float32) - out_zero) * out_scale
        return y.astype(np.float32)

    return lambda x: _chunks(x, batch, one)
