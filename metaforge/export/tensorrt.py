"""ONNX prepared for a device's TensorRT version, checked on CPU; an engine only where TensorRT and a GPU are.

On any machine: the ONNX is written at the target's opset and fixed batch, carrying its precision
itself (fp16 tensors, or int8 Q/DQ nodes calibrated here on training samples: explicit
quantisation, the only int8 TensorRT 11 has); its opset and every op are checked against the
versioned table ``trt_ops.yaml``; polygraphy lints it when installed; the exact ``trtexec``
command for the device's version goes to ``build_engine.sh`` (never a calibration run there).
With ``tensorrt`` importable and a CUDA GPU present the engine is built and run for the same
checks; otherwise engine checks are ``not-run``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from metaforge.export import INPUT_NAME, ExportError, ModelSpec
from metaforge.export.gates import Check
from metaforge.io import atomic_write_text
from metaforge.targets import Target

OPS_TABLE = Path(__file__).with_name("trt_ops.yaml")
_PRECISION_NOTE = {"fp32": "float32 tensors", "fp16": "float16 tensors, float32 input and output",
                   "int8": "Q/DQ nodes whose scales metaforge calibrated on training samples: nothing is calibrated on the device"}


@lru_cache(maxsize=None)
def _table() -> dict:
    import yaml

    versions = yaml.safe_load(OPS_TABLE.read_text())["versions"]
    for entry in versions.values():  # `extends`: another entry's lists, changed by `added` / `removed`
        if "extends" in entry:
            base = versions[entry["extends"]]
            removed = set(entry.get("removed", []))
            entry.setdefault("supported", [op for op in [*base["supported"], *entry.get("added", [])] if op not in removed])
            entry.setdefault("unsupported", [op for op in [*base["unsupported"], *removed] if op not in entry["supported"]])
            entry.setdefault("restrictions", base.get("restrictions", {}))
    return versions


def op_table(version: str) -> dict:
    """The op-support entry of a TensorRT version: as written, then major.minor, then major ("10.3" uses "10")."""
    versions = _table()
    for key in (version, ".".join(version.split(".")[:2]), version.split(".")[0]):
        if key in versions:
            return versions[key]
    known = ", ".join(k if "." in k else f"{k}.x" for k in versions)
    raise ExportError(f"TensorRT {version or '(none)'} is not supported: supported versions are {known}; "
                      f"set the target's tensorrt_version to one of them (or add a table to {OPS_TABLE.name})")


def op_support_checks(onnx_path: str | Path, version: str) -> list[Check]:
    """The file's opset and ops against TensorRT ``version``'s parser (no GPU needed)."""
    from metaforge.export.onnx import onnx_ops

    table = op_table(version)
    opset, ops = onnx_ops(onnx_path)
    lo, hi = table["opset"]
    checks = [Check("tensorrt.opset", "pass" if lo <= opset <= hi else "fail",
                    f"opset {opset}; TensorRT {version} parses {lo}..{hi}")]
    supported, unsupported = set(table["supported"]), set(table["unsupported"])
    bad = [op for op in ops if op in unsupported]
    unknown = [op for op in ops if op not in supported and op not in unsupported]
    restricted = [f"{op} ({table['restrictions'][op]})" for op in ops if op in table.get("restrictions", {})]
    if bad or unknown:
        detail = "; ".join(filter(None, [f"unsupported by TensorRT {version}: {', '.join(bad)}" if bad else "",
                                         f"not in the table: {', '.join(unknown)}" if unknown else ""]))
    else:
        detail = f"{len(ops)} op types supported: {', '.join(ops)}"
    if restricted:
        detail += f"; restrictions: {'; '.join(restricted)}"
    checks.append(Check("tensorrt.ops", "fail" if bad or unknown else "pass", detail))
    return checks


def polygraphy_lint(onnx_path: str | Path) -> Check:
    """``polygraphy check lint`` (ONNX checker + ONNX Runtime node by node) when polygraphy is installed."""
    exe = shutil.which("polygraphy") or str(Path(sys.executable).with_name("polygraphy"))
    if not Path(exe).is_file():
        return Check("tensorrt.polygraphy_lint", "not-run", "polygraphy is not installed: pip install 'metaforge[tensorrt]'")
    report = Path(onnx_path).with_name("polygraphy_lint.json")
    proc = subprocess.run([exe, "check", "lint", str(onnx_path), "-o", str(report)], capture_output=True, text=True, timeout=300)
    try:
        summary = json.loads(report.read_text()).get("summary", {})
    except (OSError, json.JSONDecodeError):
        summary = {}
    finally:
        report.unlink(missing_ok=True)
    failing = summary.get("failing", [])
    ok = proc.returncode == 0 and not failing
    detail = f"{len(summary.get('passing', []))} nodes pass" + (f", failing: {', '.join(failing)}" if failing else "")
    if proc.returncode != 0 and not failing:
        detail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return Check("tensorrt.polygraphy_lint", "pass" if ok else "fail", detail)


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a TensorRT version string that has an op table ("8.2.1" -> (8, 2))."""
    op_table(version)  # an unknown version is the one-line error that names the supported ones
    parts = (version.split(".") + ["0"])[:2]
    return int(parts[0]), int(parts[1])


def trtexec_flags(target: Target) -> list[str]:
    """Workspace and precision flags of ``trtexec`` for the target's TensorRT version.

    Workspace: ``--workspace=N`` (MiB) before 8.4; ``--memPoolSize=workspace:N`` from 8.4, where a bare
    N is MiB in every parser since (10.0's reads a unit suffix wrongly: ``workspace:256M`` is ~256 TiB
    there, so no suffix is ever written). Precision: the ONNX carries it; 8.x/10.x are weakly typed and
    need ``--fp16`` / ``--int8`` to run fp16 kernels / honour the Q/DQ scales; 11 is strongly typed
    and has no precision flags. Never ``--calib``: int8 scales come from the Q/DQ nodes calibrated on
    training samples, never from a device-side calibration run.

    The 11 line was read in NVIDIA/TensorRT samples/common/sampleOptions.cpp at 11.1.0.106 (commit
    d5883286a711a1c2ed3064c3036d99d8eb7f9682; 11.0's own copy is not in the index): ``--memPoolSize``
    parses ``addDefaultUnitSuffixIfNotSpecified(.., 'M')`` (bare N = MiB), ``--onnx``, ``--saveEngine``,
    ``--timingCacheFile`` and ``--shapes`` are parsed, no ``--fp16`` / ``--int8`` / ``--calib`` are,
    and ``--stronglyTyped`` is still accepted (a no-op; not written).
    """
    major, minor = version_tuple(target.tensorrt_version or "")
    flags = [f"--workspace={target.workspace_mb}" if (major, minor) < (8, 4) else f"--memPoolSize=workspace:{target.workspace_mb}"]
    if major < 11 and target.precision in ("fp16", "int8"):
        flags.append(f"--{target.precision}")
    return flags


def trtexec_command(target: Target, onnx_name: str, shape: tuple[int, ...], dynamic: bool = False) -> str:
    """The exact command that builds the engine on the device (trtexec ships with TensorRT)."""
    # a timing cache is only valid for the TensorRT version that wrote it: its name carries the target's
    cache = f"timing.trt{target.tensorrt_version}.cache" if target.tensorrt_version else "timing.cache"
    parts = ["trtexec", f"--onnx={onnx_name}", "--saveEngine=model.engine", f"--timingCacheFile={cache}"]
    if dynamic:  # a fixed-batch ONNX carries its shapes; trtexec wants --shapes only for dynamic ones
        parts.append(f"--shapes={INPUT_NAME}:{'x'.join(map(str, shape))}")
    return " ".join(parts + trtexec_flags(target))


def prepare_tensorrt(model: nn.Module, spec: ModelSpec, target: Target, out_dir: str | Path,
                     calibration: torch.Tensor | None, notes: list[str]):
    """Write the prepared ONNX and build script; returns (artifact, checks, engine runner or None)."""
    from metaforge.export.onnx import export_precision_onnx

    out_dir = Path(out_dir)
    batch = target.fixed_batch or 1
    version = target.tensorrt_version or ""
    version_tuple(version)  # before any work: an unknown version is one line naming the supported ones
    artifact, checks, precision_notes = export_precision_onnx(model, spec, out_dir / "model.onnx", target.opset, batch,
                                                              target.precision, calibration)
    notes += precision_notes
    artifact.format, artifact.precision = "tensorrt", target.precision
    checks += op_support_checks(artifact.path, version)
    checks.append(polygraphy_lint(artifact.path))
    shape = (batch, *spec.input_shape)
    command = trtexec_command(target, "model.onnx", shape)
    notes.append(f"TensorRT {version} build command (build_engine.sh): {command}")
    script = (f"#!/bin/sh\n# Build the {target.precision} engine on the device itself (TensorRT {version}):\n"
              f"# engines are specific to the GPU and the TensorRT version. The precision is in model.onnx\n"
              f"# ({_PRECISION_NOTE[target.precision]}).\nset -e\ncd \"$(dirname \"$0\")\"\n{command}\n")
    atomic_write_text(out_dir / "build_engine.sh", script)
    reason = engine_unavailable()
    if reason:
        checks.append(Check("tensorrt.engine", "not-run", f"{reason}; build on the device with build_engine.sh"))
        checks.append(Check("tensorrt.engine_parity", "not-run", "parity and accuracy were measured on the prepared ONNX in onnxruntime"))
        return artifact, checks, None
    from metaforge.export.tensorrt_engine import build_engine, engine_runner

    engine_path = out_dir / "model.engine"
    build_engine(Path(artifact.path), engine_path, target, out_dir / "timing.cache")
    checks.append(Check("tensorrt.engine", "pass", f"built {engine_path.name} ({target.precision}, workspace {target.workspace_mb} MB)"))
    checks.append(Check("tensorrt.engine_parity", "pass", "parity and accuracy below were measured on the engine"))
    artifact.path, artifact.notes = str(engine_path), artifact.notes + [f"prepared ONNX: {out_dir / 'model.onnx'}"]
    return artifact, checks, engine_runner(engine_path, batch)


def engine_unavailable() -> str:
    """Why no engine can be built here ("" when TensorRT and a CUDA GPU are both present)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed here"
    if not torch.cuda.is_available():
        return "no CUDA GPU here"
    if not any(importlib.util.find_spec(m) for m in ("pycuda", "cuda")):  # the engine's buffers (export/trt_device.py)
        return "neither pycuda nor cuda-python is installed here (pip install cuda-python)"
    return ""


class TensorrtExporter:
    """Format ``tensorrt`` for the registry: :func:`prepare_tensorrt`, its notes and engine runner as one result."""

    tools = ("torch", "onnx", "onnxruntime", "polygraphy", "tensorrt")

    def export(self, model: nn.Module, spec: ModelSpec, target: Target, out_dir: Path, calibration):
        from metaforge.export.registry import Exported

        notes: list[str] = []
        artifact, checks, runner = prepare_tensorrt(model, spec, target, out_dir, calibration, notes)
        on_cpu = Path(artifact.path).suffix == ".onnx"
        return Exported(artifact, tuple(checks), tuple(notes), runner, "onnxruntime (prepared ONNX)" if on_cpu else None)
