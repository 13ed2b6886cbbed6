"""PyTorch -> one self-contained ONNX file at a chosen opset, with metadata; byte-reproducible.

Uses the TorchScript exporter (``dynamo=False``): it honours opsets below 18 (TensorRT 8.2 reads
up to 13), keeps the weights inside the file and takes a fraction of a second.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from metaforge.export import INPUT_NAME, OUTPUT_NAME, Artifact, ExportError, ModelSpec
from metaforge.export.gates import Check
from metaforge.export.registry import Exported
from metaforge.io import atomic_write
from metaforge.targets import Target


def torchscript_onnx(model: nn.Module, input_shape: tuple[int, ...], opset: int, batch: int | None) -> bytes:
    """The one ONNX writer: ``model`` through the TorchScript exporter (``batch=None``: a dynamic batch).

    Export uses it with metadata and a full check (:func:`onnx_bytes`); fit's latency measurement
    uses it bare, since the file only lives for the timing."""
    model = copy.deepcopy(model).cpu().float().eval()
    example = torch.zeros((batch or 1, *input_shape), dtype=torch.float32)
    dynamic = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if batch is None else None
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), buf, dynamo=False, opset_version=opset, export_params=True,
                do_constant_folding=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic,
            )
    except Exception as e:  # the exporter raises many types; report one line
        raise ExportError(f"torch.onnx.export failed at opset {opset}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return buf.getvalue()


def onnx_bytes(model: nn.Module, spec: ModelSpec, opset: int, batch: int | None) -> bytes:
    """The serialised, checked ONNX model with ``spec``'s metadata."""
    import onnx

    return _stamped(onnx.load_from_string(torchscript_onnx(model, spec.input_shape, opset, batch)), spec)


def _stamped(proto, spec: ModelSpec) -> bytes:
    """``proto`` with ``spec``'s metadata, checked and serialised deterministically."""
    import onnx

    proto.doc_string = f"metaforge export: {spec.config}" if spec.config else "metaforge export"
    del proto.metadata_props[:]
    for key, value in sorted(spec.metadata().items()):
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise ExportError(f"onnx.checker rejected the exported model: {str(e).splitlines()[0]}") from None
    return proto.SerializeToString(deterministic=True)


def export_onnx(model: nn.Module, spec: ModelSpec, path: str | Path, opset: int, batch: int | None) -> Artifact:
    """Write ``path`` atomically and describe it."""
    data = onnx_bytes(model, spec, opset, batch)
    atomic_write(path, lambda p: p.write_bytes(data))
    return describe_onnx(path, "fp32", batch)


def export_precision_onnx(model: nn.Module, spec: ModelSpec, path: str | Path, opset: int, batch: int | None,
                          precision: str, calibration: torch.Tensor | None) -> tuple[Artifact, list[Check], list[str]]:
    """The ONNX that carries ``precision`` itself (fp32; fp16 tensors; int8 Q/DQ calibrated on ``calibration``).

    Shared by the ``onnx`` and ``tensorrt`` formats: TensorRT 11 takes its precision from the file
    only, and the same file runs in ONNX Runtime, where its parity is measured."""
    from metaforge.export.fp16 import fp16_check, to_fp16
    from metaforge.export.qdq import qdq_check, quantize_qdq

    path = Path(path)
    checked = Check("onnx.checker", "pass", f"full check at opset {opset}")
    if precision == "fp32":
        return export_onnx(model, spec, path, opset, batch), [checked], []
    if precision not in ("fp16", "int8"):
        raise ExportError(f"no ONNX writer for precision {precision!r}; choose fp32, fp16 or int8")
    import onnx

    fp32 = path.with_name(f".{path.stem}.fp32.onnx")  # the exporter's own file, converted, then removed
    export_onnx(model, spec, fp32, opset, batch)
    notes: list[str] = []
    try:
        def convert(tmp: Path) -> None:
            if precision == "int8":
                images = calibration.numpy() if calibration is not None else None
                notes.append(quantize_qdq(fp32, tmp, images, batch))
            else:
                notes.append(to_fp16(fp32, tmp))
            tmp.write_bytes(_stamped(onnx.load(str(tmp)), spec))

        atomic_write(path, convert)
    finally:
        fp32.unlink(missing_ok=True)
    check = qdq_check(path) if precision == "int8" else fp16_check(path)
    return describe_onnx(path, precision, batch), [checked, check], notes


class OnnxExporter:
    """Format ``onnx``: fp32, fp16 (float16 tensors) or int8 (Q/DQ calibrated on training samples)."""

    tools = ("torch", "onnx", "onnxruntime")

    def export(self, model: nn.Module, spec: ModelSpec, target: Target, out_dir: Path, calibration) -> Exported:
        artifact, checks, notes = export_precision_onnx(model, spec, Path(out_dir) / "model.onnx", target.opset,
                                                        target.fixed_batch, target.precision, calibration)
        return Exported(artifact, tuple(checks), tuple(notes))


def describe_onnx(path: str | Path, precision: str, batch: int | None) -> Artifact:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return Artifact(
        path=str(path), format="onnx", precision=precision, layout="NCHW", batch=batch,
        inputs=[_value_info(v) for v in proto.graph.input],
        outputs=[_value_info(v) for v in proto.graph.output],
    )


def _value_info(v) -> dict:
    import onnx

    dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
    return {"name": v.name, "shape": dims, "dtype": dtype}


def onnx_ops(path: str | Path) -> tuple[int, list[str]]:
    """(default-domain opset, sorted op types) of an ONNX file."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    ops: set[str] = set()

    def walk(graph) -> None:
        for node in graph.node:
            ops.add(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}")
            for attr in node.attribute:
                if attr.g.node:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(proto.graph)
    return opset, sorted(ops)
