"""Export any ``nn.Module`` to a device file (ONNX, TFLite, TensorRT-ready ONNX) and prove it.

Data flows one way: :func:`metaforge.export.pipeline.export_model` asks the exporter registered for
the target's format (:mod:`.registry`: :mod:`.onnx`, :mod:`.tflite`, :mod:`.tensorrt`) for the
artifact, runs it in the runtime registered for it (:mod:`.runtime`), gates it against the PyTorch
model (:mod:`.gates`) and writes the :class:`~.report.ExportReport` beside it. The modules here
import nothing of manifolds, fit or training (``tests/test_layers.py`` checks the import graph):
what to export is decided above, in :mod:`metaforge.deploy`. Heavy converters load where used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metaforge.errors import MetaforgeError

if TYPE_CHECKING:  # the package itself stays torch-free: the CLI imports its errors before checking input
    from metaforge.data import Normalization, Split
    from metaforge.export.report import ExportReport

__all__ = ["Artifact", "ExportData", "ExportError", "GateFailed", "ModelSpec", "export_model"]

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class ExportError(MetaforgeError):
    """A model could not be written, or its file could not be run, in the requested format."""

    exit_code = 4


class GateFailed(MetaforgeError):
    """The artifact was written but a parity or accuracy gate failed (details in report.json)."""

    exit_code = 2

    @classmethod
    def from_report(cls, report: ExportReport, path) -> "GateFailed":
        failed = [f"{c.name} {c.detail}" for c in report.failed()]
        return cls(f"{report.target}: gate failed: {'; '.join(failed)} (see {path})")


@dataclass(frozen=True)
class ModelSpec:
    """What a caller knows about the model: one normalised image tensor in, class logits out."""

    input_shape: tuple[int, ...]  # C x H x W, without the batch
    normalization: Normalization
    classes: tuple[str, ...]
    config: str = ""  # a label recorded in the file's metadata and the report
    extra: dict = field(default_factory=dict, hash=False)  # more metadata (string values)

    def metadata(self) -> dict[str, str]:
        """Key/value metadata written into artifacts (ONNX ``metadata_props``)."""
        import json

        import metaforge

        meta = {
            "metaforge_version": metaforge.__version__,
            "config": self.config,
            "normalization": json.dumps(self.normalization.to_dict(), sort_keys=True),
            "classes": json.dumps(list(self.classes)),
            "input_shape": json.dumps(list(self.input_shape)),
            "input_layout": "NCHW",
        }
        meta.update({str(k): str(v) for k, v in self.extra.items()})
        return meta


@dataclass(frozen=True, eq=False)
class ExportData:
    """Held-out samples for parity and accuracy, and training samples for int8 calibration."""

    heldout: Split
    calibration: Split
    norm: Normalization
    heldout_name: str = "test"  # recorded in the report


@dataclass
class Artifact:
    """A written model file and how to feed it."""

    path: str
    format: str
    precision: str
    layout: str  # of the input: "NCHW" or "NHWC"
    batch: int | None  # fixed batch size, or None for dynamic
    inputs: list[dict] = field(default_factory=list)  # name, shape, dtype, quantization
    outputs: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # fallbacks and facts worth reporting


def export_model(*args, **kwargs):
    """See :func:`metaforge.export.pipeline.export_model` (imported lazily)."""
    from metaforge.export.pipeline import export_model as run

    return run(*args, **kwargs)
