"""Export targets: a file format, a precision, a runtime and the tolerances an export must meet.

A target is a YAML file (``targets/NAME.yaml`` at the repository root, or any path) read by the
one strict loader (:mod:`metaforge.yamlconf`). Profiles name their target (``target: onnx-fp32``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import metaforge
from metaforge.errors import MetaforgeError
from metaforge.export.registry import formats, runtime_name
from metaforge.yamlconf import find_yaml, load_yaml_dataclass, shipped_names

TARGETS_DIR = Path(metaforge.__file__).resolve().parent / "shipped" / "targets"  # inside the package, so a wheel carries them
PRECISIONS = ("fp32", "fp16", "int8")  # the values of Target.precision


class TargetError(MetaforgeError):
    """A target name or file that cannot be used."""

    exit_code = 2


@dataclass(frozen=True)
class Tolerances:
    """Gates an export must pass; ``None`` means the gate is not applied."""

    max_abs_diff: float | None = None  # of the logits, against PyTorch
    top1_agreement: float | None = None  # share of samples whose top-1 class matches PyTorch
    sqnr_db: float | None = None  # minimum signal-to-quantisation-noise ratio of the logits
    int8_accuracy_ratio: float | None = None  # artifact accuracy >= ratio x PyTorch accuracy

    def __post_init__(self) -> None:
        for name in ("top1_agreement", "int8_accuracy_ratio"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"'tolerances.{name}' must lie in [0, 1], got {v}")
        if self.max_abs_diff is not None and self.max_abs_diff < 0:
            raise ValueError(f"'tolerances.max_abs_diff' must be 0 or more, got {self.max_abs_diff}")


@dataclass(frozen=True)
class Target:
    name: str
    format: str  # a registered exporter's format (metaforge.export.registry)
    precision: Literal["fp32", "fp16", "int8"]
    tolerances: Tolerances
    description: str = ""
    runtime: str = ""  # defaults to the format's runtime
    opset: int = 17  # ONNX opset (onnx and tensorrt)
    batch: int | str = "dynamic"  # "dynamic" or a fixed batch size baked into the file
    calibration_samples: int = 256  # int8: representative samples drawn from the training split
    parity_samples: int = 1000  # held-out samples compared (all of the split if it has fewer)
    tensorrt_version: str | None = None  # tensorrt: the version on the device, e.g. "8.2"
    workspace_mb: int = 256  # tensorrt: builder workspace
    fast_precisions: tuple[str, ...] = ("fp32", "fp16", "int8")  # what the device runs fast
    path: str = field(default="", compare=False)  # set by the loader

    def __post_init__(self) -> None:
        if self.format not in formats():  # one per registered exporter
            raise ValueError(f"'format' is {self.format!r}; valid values: {', '.join(formats())}")
        if not self.runtime:
            object.__setattr__(self, "runtime", runtime_name(self.format))
        if isinstance(self.batch, str) and self.batch != "dynamic":
            raise ValueError(f"'batch' must be 'dynamic' or a positive integer, got {self.batch!r}")
        if isinstance(self.batch, int) and self.batch < 1:
            raise ValueError(f"'batch' must be 'dynamic' or a positive integer, got {self.batch}")
        if self.format == "tensorrt" and not self.tensorrt_version:
            raise ValueError("a tensorrt target needs 'tensorrt_version' (the version on the device, e.g. '8.2')")
        if self.calibration_samples < 1 or self.parity_samples < 1:
            raise ValueError("'calibration_samples' and 'parity_samples' must be at least 1")
        if not 7 <= self.opset <= 25:
            raise ValueError(f"'opset' must lie in 7..25, got {self.opset}")

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the artifact, or None when it is dynamic."""
        return None if self.batch == "dynamic" else int(self.batch)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def list_targets() -> list[str]:
    """Names of the targets shipped in ``targets/``."""
    return shipped_names(TARGETS_DIR)


def load_target(name_or_path: str | Path) -> Target:
    """A target by path, else by name in ``targets/``."""
    path = find_yaml(name_or_path, TARGETS_DIR, "target", TargetError)
    return dataclasses.replace(load_yaml_dataclass(path, Target), path=str(path))


def default_target(fmt: str, precision: str) -> Target:
    """The shipped target for a format and precision (``onnx`` + ``fp32`` -> ``onnx-fp32``)."""
    name = f"{fmt}-{precision}"
    if name not in list_targets():
        valid = ", ".join(list_targets())
        raise TargetError(f"no shipped target for --format {fmt} --precision {precision}; shipped targets: {valid}")
    return load_target(name)


def resolve_target(base: Target | None, fmt: str | None, precision: str | None) -> Target:
    """The target to export to: ``base`` (a profile's), changed by an explicit format/precision."""
    fmt = fmt or (base.format if base else None)
    precision = precision or (base.precision if base else None) or "fp32"
    if fmt is None:
        raise TargetError("say what to export to: --format onnx|tflite|tensorrt, or a --profile whose target names one")
    if fmt not in formats():
        raise TargetError(f"unknown format {fmt!r}: choose one of {', '.join(formats())}")
    if precision not in PRECISIONS:
        raise TargetError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if base is not None and (base.format, base.precision) == (fmt, precision):
        return base
    if base is not None and base.format == fmt:  # the same device: its TensorRT version and fast precisions stay
        shipped = _shipped_like(fmt, precision, base.tensorrt_version)
        if shipped is not None:
            return dataclasses.replace(shipped, fast_precisions=base.fast_precisions)
        return dataclasses.replace(base, precision=precision, name=f"{base.name}@{precision}")
    if f"{fmt}-{precision}" in list_targets():
        return default_target(fmt, precision)
    raise TargetError(f"no target for {fmt} {precision}; shipped targets: {', '.join(list_targets())}")


def _shipped_like(fmt: str, precision: str, tensorrt_version: str | None) -> Target | None:
    """The shipped target for ``fmt``/``precision`` on the same TensorRT version (None: not tensorrt)."""
    preferred = f"{fmt}-{precision}"
    for name in sorted(list_targets(), key=lambda n: n != preferred):
        t = load_target(name)
        if (t.format, t.precision, t.tensorrt_version) == (fmt, precision, tensorrt_version):
            return t
    return None
