"""int8 carried by the ONNX itself: QuantizeLinear/DequantizeLinear nodes calibrated here.

TensorRT's explicit quantisation (the only int8 TensorRT 11 has, and the one 8.x/10.x honour
with ``--int8``) reads its scales from Q/DQ nodes and wants them symmetric: int8, zero point 0,
per-channel weights on the output-channel axis. ONNX Runtime writes such a file
(``quantize_static`` in QDQ format) from real training samples, and runs it on this CPU, so the
int8 model's parity and accuracy are measured here before anything reaches a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaforge.export import ExportError
from metaforge.export.gates import Check
from metaforge.export.quiet import quiet

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


@dataclass(frozen=True)
class QdqConfig:
    """How the scales are found: TensorRT's requirements are the defaults."""

    per_channel: bool = True  # weights: one scale per output channel
    symmetric_activations: bool = True  # zero point 0 (TensorRT rejects any other)
    # Weights in -64..63 (still int8, zero point 0). ONNX Runtime's x86 int8 kernels without VNNI
    # saturate full-range 8-bit products: on the digits test network SQNR fell to 11 dB (35 dB with
    # the Q/DQ arithmetic done exactly, 35 dB with 7-bit weights in both), so one file serves both.
    seven_bit_weights: bool = True
    method: str = "MinMax"  # onnxruntime CalibrationMethod name: MinMax, Entropy or Percentile
    batch: int = 32  # calibration batch, for a dynamic-batch file


class _Reader:
    """``CalibrationDataReader`` over normalised training images, in the file's batch size."""

    def __init__(self, name: str, images: np.ndarray, batch: int, fixed: bool):
        pieces = [images[i : i + batch] for i in range(0, len(images), batch)]
        if fixed:  # a fixed-batch file takes whole batches only
            pieces = [b for b in pieces if len(b) == batch]
        self.samples = sum(len(b) for b in pieces)
        self._batches = iter(pieces)
        self._name = name

    def get_next(self):
        piece = next(self._batches, None)
        return None if piece is None else {self._name: piece}

    def rewind(self) -> None:  # not needed for one pass; ORT calls it in some versions
        pass


def quantize_qdq(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray, fixed_batch: int | None,
                 cfg: QdqConfig = QdqConfig()) -> str:
    """Write the QDQ int8 ONNX of ``fp32_path`` calibrated on ``calibration``; returns a note for the report."""
    if calibration is None or len(calibration) == 0:
        raise ExportError("int8 ONNX export needs calibration samples from the training split")
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    except ImportError:
        raise ExportError("int8 ONNX needs onnxruntime's quantisation tools: pip install 'metaforge[onnx]'") from None
    import onnx

    name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    images = np.ascontiguousarray(calibration, dtype=np.float32)
    reader = _Reader(name, images, fixed_batch or cfg.batch, fixed_batch is not None)
    if reader.samples == 0:
        raise ExportError(f"int8 calibration needs at least {fixed_batch} training samples (the file's batch size)")
    try:
        with quiet():  # ORT logs a pre-processing hint per call: not actionable here
            quantize_static(
                str(fp32_path), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=cfg.per_channel,
                reduce_range=cfg.seven_bit_weights, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod, cfg.method),
                extra_options={"ActivationSymmetric": cfg.symmetric_activations, "WeightSymmetric": True,
                               "QuantizeBias": False},  # an int32 bias DQ is not TensorRT's: biases stay float
            )
    except Exception as e:  # ORT raises many types; report one line
        raise ExportError(f"onnxruntime quantize_static failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    kind = ("per-channel" if cfg.per_channel else "per-tensor") + (" 7-bit" if cfg.seven_bit_weights else "")
    return (f"int8: QDQ ONNX calibrated by onnxruntime quantize_static ({cfg.method}) on {reader.samples} training samples; "
            f"symmetric int8, zero point 0, {kind} weights, per-tensor activations")


def qdq_check(path: str | Path) -> Check:
    """Pass if every Q/DQ is int8 with zero point 0 and every weighted op reads dequantised weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name: t for t in graph.initializer}
    produced = {out: n for n in graph.node for out in n.output}
    problems, n_qdq = [], 0
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        n_qdq += 1
        zp = inits.get(node.input[2]) if len(node.input) > 2 else None
        if zp is None:
            problems.append(f"{node.name or node.op_type}: no int8 zero point")
        elif zp.data_type != onnx.TensorProto.INT8 or np.any(numpy_helper.to_array(zp) != 0):
            problems.append(f"{node.name or node.op_type}: zero point not int8 0")
    for node in graph.node:
        if node.op_type in WEIGHTED_OPS:
            src = produced.get(node.input[1])
            if src is None or src.op_type != "DequantizeLinear":
                problems.append(f"{node.name or node.op_type}: weights not quantised")
    if n_qdq == 0:
        problems.append("no QuantizeLinear/DequantizeLinear nodes")
    detail = (f"{n_qdq} Q/DQ nodes, all int8 with zero point 0; every weighted op reads int8 weights"
              if not problems else "; ".join(problems[:5]))
    return Check("onnx.qdq", "fail" if problems else "pass", detail)
