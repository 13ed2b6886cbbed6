"""fp16 carried by the ONNX itself: float16 weights and activations, float32 input and output.

TensorRT 11 has no fp16 builder flag (networks are strongly typed), so an fp16 engine needs an
fp16 ONNX. The input and output stay float32 (a Cast after the input and before the output), so
callers and the bundled samples feed the same tensors as for fp32. ONNX Runtime runs the file on
this CPU, so its parity against PyTorch is measured here.
"""

from __future__ import annotations

from pathlib import Path

from metaforge.export import ExportError
from metaforge.export.gates import Check


def to_fp16(fp32_path: str | Path, out_path: str | Path) -> str:
    """Write the float16 version of ``fp32_path``; returns a note for the report."""
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        raise ExportError("fp16 ONNX needs onnxruntime's float16 converter: pip install 'metaforge[onnx]'") from None
    proto = onnx.load(str(fp32_path))
    try:
        half = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=False)
    except Exception as e:
        raise ExportError(f"fp16 conversion failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    _sort_nodes(half.graph)  # the converter appends its Cast nodes at the end; ONNX wants them in order
    onnx.save(half, str(out_path))
    return "fp16: weights and activations float16 in the ONNX; input and output kept float32 (Cast nodes at both ends)"


def _sort_nodes(graph) -> None:
    """Order ``graph``'s nodes so that each comes after the producers of its inputs (stable otherwise)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not set(n.input) <= ready]
        done = [n for n in pending if set(n.input) <= ready]
        if not done:
            raise ExportError("fp16 conversion left a graph with a cycle or a missing input")
        for n in done:
            ready.update(n.output)
        ordered += done
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def fp16_check(path: str | Path) -> Check:
    """Pass if every floating-point weight is float16 (the precision really is in the file)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    floats = [t for t in graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)]
    wide = [t.name for t in floats if t.data_type != onnx.TensorProto.FLOAT16]
    status = "fail" if wide or not floats else "pass"
    detail = f"{len(floats)} float weights, all float16" if status == "pass" else f"not float16: {', '.join(wide[:5]) or 'no float weights'}"
    return Check("onnx.fp16", status, detail)
