"""One exporter per format and one runtime per artifact kind, registered by name.

An exporter writes its artifact into a folder and says which checks it ran; a runtime turns an
artifact into a function from normalised NCHW float32 images to logits, for the parity gate.
Registrations are ``"module:attribute"`` strings resolved on first use, so heavy converters load
only when their format is asked for. Adding a format is one module (an :class:`Exporter`) plus
one :func:`register_exporter` line below, and its runtime if it brings a new one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from metaforge.export import ExportError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from metaforge.export import Artifact, ModelSpec
    from metaforge.export.gates import Check
    from metaforge.targets import Target

Runner = Callable[["np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class Exported:
    """What an exporter hands back: the artifact, the checks it ran, and a runner if it brought one."""

    artifact: Artifact
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    runner: Runner | None = field(default=None, compare=False)  # None: the runtime registered for artifact.format
    runtime: str | None = None  # what ran it for the report, when not the target's runtime


class Exporter(Protocol):
    tools: tuple[str, ...]  # distributions whose versions the report records

    def export(self, model: nn.Module, spec: ModelSpec, target: Target, out_dir: Path,
               calibration: torch.Tensor | None) -> Exported:
        """Write the artifact for ``target`` into ``out_dir`` (``calibration``: int8 only)."""


RuntimeFactory = Callable[["Artifact"], Runner]

_EXPORTERS: dict[str, str] = {}
_RUNTIMES: dict[str, str] = {}
_RUNTIME_NAMES: dict[str, str] = {}


def register_exporter(fmt: str, ref: str, runtime_name: str) -> None:
    """``fmt`` is exported by the :class:`Exporter` at ``ref``; ``runtime_name`` is what runs it on the device
    (a target's default ``runtime``). The registered names are the valid values of ``Target.format``."""
    _EXPORTERS[fmt] = ref
    _RUNTIME_NAMES[fmt] = runtime_name


def register_runtime(fmt: str, ref: str) -> None:
    _RUNTIMES[fmt] = ref


def formats() -> tuple[str, ...]:
    return tuple(_EXPORTERS)


def runtime_name(fmt: str) -> str:
    return _RUNTIME_NAMES[fmt]


def _resolve(table: dict[str, str], fmt: str, kind: str):
    if fmt not in table:
        raise ExportError(f"no {kind} for format {fmt!r}; valid formats: {', '.join(table)}")
    module, attr = table[fmt].split(":")
    return getattr(importlib.import_module(module), attr)


def exporter(fmt: str) -> Exporter:
    return _resolve(_EXPORTERS, fmt, "exporter")()


def runtime(fmt: str) -> RuntimeFactory:
    return _resolve(_RUNTIMES, fmt, "runtime")


register_exporter("onnx", "metaforge.export.onnx:OnnxExporter", "onnxruntime")
register_exporter("tflite", "metaforge.export.tflite:TfliteExporter", "ai-edge-litert")
register_exporter("tensorrt", "metaforge.export.tensorrt:TensorrtExporter", "tensorrt")
register_runtime("onnx", "metaforge.export.runtime:onnx_runner")
register_runtime("tflite", "metaforge.export.runtime:tflite_runner")
register_runtime("tensorrt", "metaforge.export.runtime:onnx_runner")  # a prepared TensorRT ONNX is checked in onnxruntime
