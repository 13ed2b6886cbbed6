"""export -> run in the real runtime -> gate against PyTorch -> ``report.json``: one call."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metaforge.export import Artifact, ExportData, ExportError, ModelSpec
from metaforge.export.checks import REPORT_SCHEMA, Check, compare, sha256
from metaforge.io import atomic_write_text
from metaforge.report import Reporter
from metaforge.targets import FORMATS, PRECISIONS, Target, TargetError, default_target, list_targets

CALIBRATION_SEED = 0
ARTIFACT_NAMES = {"onnx": "model.onnx", "tflite": "model.tflite", "tensorrt": "model.onnx"}


@dataclass
class ExportResult:
    report: dict
    artifact: Path
    report_path: Path

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def resolve_target(base: Target | None, fmt: str | None, precision: str | None) -> Target:
    """The target to export to: ``base`` (a profile's), changed by an explicit format/precision."""
    fmt = fmt or (base.format if base else None)
    precision = precision or (base.precision if base else None) or "fp32"
    if fmt is None:
        raise TargetError("say what to export to: --format onnx|tflite|tensorrt, or a --profile whose target names one")
    if fmt not in FORMATS:
        raise TargetError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise TargetError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if base is not None and (base.format, base.precision) == (fmt, precision):
        return base
    if f"{fmt}-{precision}" in list_targets():
        return default_target(fmt, precision)
    if base is not None and base.format == fmt:
        return dataclasses.replace(base, precision=precision, name=f"{base.name}@{precision}")
    raise TargetError(f"no target for {fmt} {precision}; shipped targets: {', '.join(list_targets())}")


def calibration_images(data: ExportData, n: int) -> torch.Tensor:
    """``n`` normalised training samples, drawn with a fixed seed (the representative set)."""
    split = data.calibration
    gen = torch.Generator().manual_seed(CALIBRATION_SEED)
    idx = torch.randperm(len(split), generator=gen)[: min(n, len(split))]
    return data.norm.apply(split.images[idx])


@torch.no_grad()
def reference_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    model = model.cpu().float().eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


def export_model(
    model: nn.Module, spec: ModelSpec, target: Target, out_dir: str | Path, data: ExportData,
    *, allow_fallback: bool = False, reporter: Reporter | None = None,
) -> ExportResult:
    """Write the artifact for ``target`` into ``out_dir``, check it, and write ``report.json``."""
    rep = reporter or Reporter()
    out_dir = Path(out_dir)
    target, checks, notes = _precision_policy(target, allow_fallback)
    path = out_dir / ARTIFACT_NAMES[target.format]
    n = min(target.parity_samples, len(data.heldout))
    x = data.norm.apply(data.heldout.images[:n])
    labels = data.heldout.labels[:n].numpy()
    calib = calibration_images(data, target.calibration_samples) if target.precision == "int8" else None
    t0 = time.perf_counter()
    rep.log(f"exporting {target.format} {target.precision} to {path}")
    runner = None
    if target.format == "onnx":
        if target.precision != "fp32":
            raise ExportError(f"ONNX export writes fp32 only; for {target.precision} use --format tflite or tensorrt")
        from metaforge.export.onnx import export_onnx

        artifact = export_onnx(model, spec, path, target.opset, target.fixed_batch)
        checks.append(Check("onnx.checker", "pass", f"full check at opset {target.opset}"))
    elif target.format == "tflite":
        from metaforge.export.tflite import export_tflite

        artifact = export_tflite(model, spec, path, target.precision, target.fixed_batch or 1, calib)
        if target.precision == "int8":
            from metaforge.export.tflite import full_integer_check

            checks.append(full_integer_check(artifact))
    else:
        from metaforge.export.tensorrt import prepare_tensorrt

        artifact, trt_checks, runner = prepare_tensorrt(model, spec, target, out_dir, calib, notes)
        checks.extend(trt_checks)
    seconds = time.perf_counter() - t0
    rep.log(f"running {n} held-out samples through {artifact.format} ({Path(artifact.path).name})")
    if runner is None:
        from metaforge.export.runtime import load_runner

        runner = load_runner(artifact)
    try:
        out = runner(x.numpy())
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{artifact.format} runtime failed on {artifact.path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    result = compare(reference_logits(model, x), out, labels, target.tolerances)
    checks.extend(result.pop("checks"))
    result["heldout"] = {"split": data.heldout_name, "samples": n, "of": len(data.heldout)}
    report = _report(spec, target, artifact, result, checks, notes + artifact.notes, calib, seconds)
    report_path = out_dir / "report.json"
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    return ExportResult(report, Path(artifact.path), report_path)


def _precision_policy(target: Target, allow_fallback: bool) -> tuple[Target, list[Check], list[str]]:
    """A precision the device cannot run fast is an error, or with ``allow_fallback`` a recorded fallback."""
    if target.precision in target.fast_precisions:
        return target, [], []
    fast = ", ".join(target.fast_precisions)
    if not allow_fallback:
        raise ExportError(
            f"target {target.name} cannot run {target.precision} fast (fast precisions: {fast}); "
            f"pick one of those with --precision, or pass --allow-fallback to export {target.fast_precisions[-1]} instead"
        )
    fallback = target.fast_precisions[-1]
    note = f"fallback: {target.precision} requested, {fallback} exported ({target.name} runs only {fast} fast)"
    new = dataclasses.replace(target, precision=fallback)
    return new, [Check("precision.fallback", "pass", note)], [note]


def _report(spec: ModelSpec, target: Target, artifact: Artifact, result: dict, checks: list[Check],
            notes: list[str], calib: torch.Tensor | None, seconds: float) -> dict:
    from metaforge.export.runtime import runtime_versions

    status = [c.status for c in checks]
    path = Path(artifact.path)
    return {
        "schema": REPORT_SCHEMA,
        "format": target.format,
        "precision": target.precision,
        "target": target.name,
        "runtime": "onnxruntime (prepared ONNX)" if target.format == "tensorrt" and path.suffix == ".onnx" else target.runtime,
        "artifact": {
            "file": path.name,
            "path": str(path),
            "sha256": sha256(path),
            "size_bytes": path.stat().st_size,
            "layout": artifact.layout,
            "batch": artifact.batch if artifact.batch is not None else "dynamic",
            "inputs": artifact.inputs,
            "outputs": artifact.outputs,
        },
        "config": spec.config,
        "metadata": spec.metadata(),
        "n_samples": result["n_samples"],
        "heldout": result["heldout"],
        "parity": result["parity"],
        "accuracy": result["accuracy"],
        "tolerances": dataclasses.asdict(target.tolerances),
        "calibration": None if calib is None else {"samples": int(len(calib)), "split": "train", "seed": CALIBRATION_SEED},
        "passed": "fail" not in status,
        "complete": "not-run" not in status,
        "checks": [c.to_dict() for c in checks],
        "notes": notes,
        "tools": runtime_versions(target.format),
        "export_seconds": round(seconds, 3),
    }
