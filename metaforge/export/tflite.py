"""PyTorch -> LiteRT (TFLite) with litert-torch: fp32, fp16 weights, or full-integer int8.

The file takes NHWC input (``to_channel_last_io``, no transposes at the edges) at a fixed batch
(litert-torch converts static shapes only). int8 is full-integer: PT2E static quantisation
(per-channel symmetric weights, per-tensor activations from a histogram observer) calibrated on
a representative set of training samples; input and output are int8 and their scale/zero-point
are recorded. The same files run in ``ai-edge-litert`` and in ``tflite-runtime`` on devices.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import nn

from metaforge.export import Artifact, ExportError, ModelSpec
from metaforge.export.gates import Check
from metaforge.export.quiet import quiet
from metaforge.export.registry import Exported
from metaforge.io import atomic_write
from metaforge.targets import Target

_POOL_OPS = ("adaptive_avg_pool2d.default", "mean.dim")
_ADD_OPS = ("add.Tensor",)
_RELU_OPS = ("relu.default", "relu_.default")
CALIBRATION_BATCH = 64


def export_tflite(
    model: nn.Module, spec: ModelSpec, path: str | Path, precision: str, batch: int,
    calibration: torch.Tensor | None = None,
) -> Artifact:
    """Write ``path`` atomically; ``calibration`` (normalised N x C x H x W) is needed for int8."""
    with quiet():
        data, notes = _convert(model, spec, precision, batch, calibration)
    atomic_write(path, lambda p: p.write_bytes(data))
    art = describe_tflite(path, precision, batch)
    art.notes.extend([*notes, "runs in ai-edge-litert here and in tflite-runtime (numpy<2) on devices: same file"])
    return art


class TfliteExporter:
    """Format ``tflite``: fp32, fp16 weights or full-integer int8, NHWC at a fixed batch."""

    tools = ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer")

    def export(self, model: nn.Module, spec: ModelSpec, target: Target, out_dir: Path, calibration) -> Exported:
        artifact = export_tflite(model, spec, Path(out_dir) / "model.tflite", target.precision, target.fixed_batch or 1, calibration)
        return Exported(artifact, (full_integer_check(artifact),) if target.precision == "int8" else ())


def _convert(model: nn.Module, spec: ModelSpec, precision: str, batch: int, calibration: torch.Tensor | None) -> tuple[bytes, list[str]]:
    try:
        import litert_torch
    except ImportError:
        raise ExportError("TFLite export needs litert-torch: pip install 'metaforge[tflite]'") from None
    litert_torch.config.show_progress = False
    model = copy.deepcopy(model).cpu().float().eval()
    example = torch.zeros((batch, *spec.input_shape), dtype=torch.float32)
    notes: list[str] = []
    try:
        if precision == "int8":
            if calibration is None or len(calibration) == 0:
                raise ExportError("int8 TFLite export needs calibration samples from the training split")
            edge = _convert_int8(litert_torch, model, example, calibration)
            notes.append(f"int8: full-integer PT2E, calibrated on {len(calibration)} training samples")
        else:
            nhwc = litert_torch.to_channel_last_io(model, args=[0])
            edge = litert_torch.convert(nhwc, (example.permute(0, 2, 3, 1).contiguous(),))
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "model.tflite"
            edge.export(str(raw))
            data = raw.read_bytes()
        if precision == "fp16":
            data = _fp16_weights(data)
            notes.append("fp16: weights stored as float16 (ai-edge-quantizer float casting), compute in fp32 on CPU")
        data = _with_metadata(data, {**spec.metadata(), "input_layout": "NHWC"})
    except ExportError:
        raise
    except Exception as e:  # converters raise many types; report one line
        raise ExportError(f"litert-torch conversion ({precision}) failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return data, notes


def _convert_int8(litert_torch, model: nn.Module, example: torch.Tensor, calibration: torch.Tensor):
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    quantizer = _full_int_quantizer_class()().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    calibration = calibration.float()
    # Calibrate through a dynamic-batch graph: batches of 64 observe ~10x faster than one by one;
    # a model that will not export with a dynamic batch is calibrated at its fixed batch instead.
    step, dynamic = CALIBRATION_BATCH, True
    try:
        dims = ({0: torch.export.Dim("batch", min=1, max=max(2, len(calibration)))},)
        graph = torch.export.export(model, (calibration[[0, -1]],), dynamic_shapes=dims).module()
    except Exception:
        graph, step, dynamic = torch.export.export(model, (example,)).module(), len(example), False
    prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calibration), step):
            if dynamic or i + step <= len(calibration):
                prepared(calibration[i : i + step])
    converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    nhwc = litert_torch.to_channel_last_io(converted, args=[0])
    return litert_torch.convert(
        nhwc, (example.permute(0, 2, 3, 1).contiguous(),),
        quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer),
    )


def _full_int_quantizer_class():
    from litert_torch.quantize import pt2e_quantizer
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    def annotated(node) -> bool:
        return "quantization_annotation" in node.meta

    class FullIntQuantizer(pt2e_quantizer.PT2EQuantizer):
        """litert-torch's quantizer, plus residual adds and global average pooling.

        torch.export in torch 2.13 drops the source-module metadata that litert-torch's add and
        pooling annotators match on, which leaves those ops in float between DEQUANTIZE and
        QUANTIZE. Annotating them here (by aten op) keeps the whole graph int8.
        """

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            act = self.global_config.input_activation
            for node in model.graph.nodes:
                if node.op != "call_function" or annotated(node):
                    continue
                target = str(node.target)
                if target.endswith(_ADD_OPS) and all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
                    users = list(node.users)
                    relu = users[0] if len(users) == 1 and str(users[0].target).endswith(_RELU_OPS) else None
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={a: act for a in node.args[:2]}, output_qspec=None if relu else act, _annotated=True)
                    if relu is not None and not annotated(relu):
                        relu.meta["quantization_annotation"] = QuantizationAnnotation(output_qspec=act, _annotated=True)
                elif target.endswith(_POOL_OPS):
                    src = node.args[0]
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={src: act}, output_qspec=SharedQuantizationSpec((src, node)), _annotated=True
                    )
            return model

    return FullIntQuantizer


def _fp16_weights(data: bytes) -> bytes:
    """fp32 .tflite bytes -> the same model with float16 weights."""
    from ai_edge_quantizer import quantizer as aeq

    recipe = [{
        "regex": ".*", "operation": "*", "algorithm_key": "float_casting",
        "op_config": {
            "weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
            "compute_precision": "FLOAT", "explicit_dequantize": True,
        },
    }]
    q = aeq.Quantizer(bytearray(data))
    q.load_quantization_recipe(recipe)
    result = q.quantize(enable_progress_report=False)
    return bytes(result.quantized_model)


def _with_metadata(data: bytes, meta: dict[str, str]) -> bytes:
    """Add a ``metaforge`` metadata entry (JSON) to a .tflite flatbuffer; runtimes ignore it."""
    import json

    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.convert_bytearray_to_object(bytearray(data))
    if any(b.offset for b in model.buffers or []):
        return data  # buffers stored past the flatbuffer (>2 GB models): leave the file as written
    buf = schema.BufferT()
    buf.data = list(json.dumps(meta, sort_keys=True).encode())
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "metaforge", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(fb.convert_object_to_bytearray(model))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metaforge`` metadata entry of a .tflite file ({} if absent)."""
    import json

    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    for i in range(model.MetadataLength()):
        m = model.Metadata(i)
        if m.Name() == b"metaforge":
            return json.loads(model.Buffers(m.Buffer()).DataAsNumpy().tobytes())
    return {}


def describe_tflite(path: str | Path, precision: str, batch: int) -> Artifact:
    """Input/output names, shapes, dtypes and int8 quantisation parameters, read back from the file."""
    interp = load_interpreter(path)

    def io(d: dict) -> dict:
        scale, zero = d["quantization"]
        entry = {"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": d["dtype"].__name__}
        if scale:
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        return entry

    return Artifact(
        path=str(path), format="tflite", precision=precision, layout="NHWC", batch=batch,
        inputs=[io(d) for d in interp.get_input_details()], outputs=[io(d) for d in interp.get_output_details()],
    )


def tflite_ops(path: str | Path) -> list[str]:
    """Builtin operator names of the main subgraph, in order (read with the flatbuffer schema)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    sub = model.Subgraphs(0)
    ops = []
    for j in range(sub.OperatorsLength()):
        code = codes[sub.Operators(j).OpcodeIndex()]
        ops.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    return ops


def full_integer_check(artifact: Artifact) -> Check:
    """Pass if input and output are int8 and no operator computes in float (no DEQUANTIZE)."""
    io_types = {d["dtype"] for d in artifact.inputs + artifact.outputs}
    float_ops = sorted({op for op in tflite_ops(artifact.path) if op == "DEQUANTIZE"})
    ok = io_types == {"int8"} and not float_ops
    detail = f"input/output {'/'.join(sorted(io_types))}" + (f"; float islands after {', '.join(float_ops)}" if float_ops else "; every operator int8")
    return Check("tflite.full_integer", "pass" if ok else "fail", detail)


def load_interpreter(path: str | Path, threads: int | None = None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ExportError("running TFLite files needs ai-edge-litert: pip install 'metaforge[tflite]'") from None
    try:
        with quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate" and the like
            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
    except Exception as e:
        raise ExportError(f"ai-edge-litert cannot load {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return interp
