"""The export report (``report.json``): one frozen type, one writer, read by attribute everywhere.

Schema ``metaforge.export-report/1``; :meth:`ExportReport.to_dict` gives the JSON in field order,
so the file is the same as before it had a type.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from metaforge.export.gates import Accuracy, Check, Parity
from metaforge.io import atomic_write_text

REPORT_SCHEMA = "metaforge.export-report/1"
REPORT_FILE = "report.json"


@dataclass(frozen=True)
class ArtifactFile:
    """The written file as the report describes it (the path is where it lies once published)."""

    file: str
    path: str
    sha256: str
    size_bytes: int
    layout: str
    batch: int | str  # a fixed batch size, or "dynamic"
    inputs: list[dict]
    outputs: list[dict]


@dataclass(frozen=True)
class ExportReport:
    schema: str
    format: str
    precision: str
    target: str
    runtime: str
    artifact: ArtifactFile
    config: str
    metadata: dict[str, str]
    n_samples: int
    heldout: dict  # split, samples, of
    parity: Parity
    accuracy: Accuracy
    tolerances: dict
    calibration: dict | None  # samples, split, seed (int8 only)
    passed: bool
    complete: bool  # false when some check could not run here
    checks: tuple[Check, ...]
    notes: tuple[str, ...]
    tools: dict[str, str]
    export_seconds: float

    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write(self, folder: str | Path) -> Path:
        """The one writer: ``folder/report.json``, atomically."""
        return atomic_write_text(Path(folder) / REPORT_FILE, json.dumps(self.to_dict(), indent=2) + "\n")
