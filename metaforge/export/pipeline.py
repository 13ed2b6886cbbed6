"""export -> run in the real runtime -> gate against PyTorch -> ``report.json``: one call.

The folder is filled in a temp folder beside it and published at the end: it appears whole, with
its report, or not at all (an export whose runtime fails leaves nothing; one whose gate fails
keeps its artifact and the report that says why).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metaforge.export import Artifact, ExportData, ExportError, ModelSpec
from metaforge.export.gates import Check, compare
from metaforge.export.registry import exporter, runtime
from metaforge.export.report import REPORT_FILE, REPORT_SCHEMA, ArtifactFile, ExportReport
from metaforge.io import atomic_folder, file_sha256
from metaforge.progress import Progress
from metaforge.targets import Target

CALIBRATION_SEED = 0


@dataclass(frozen=True)
class ExportResult:
    report: ExportReport
    artifact: Path
    report_path: Path

    @property
    def passed(self) -> bool:
        return self.report.passed


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
    *, allow_fallback: bool = False, progress: Progress | None = None,
) -> ExportResult:
    """Write the artifact for ``target`` into ``out_dir``, check it, and write ``report.json``."""
    progress = progress or Progress()
    out_dir = Path(out_dir)
    target, checks, notes = _precision_policy(target, allow_fallback)
    fmt = exporter(target.format)
    n = min(target.parity_samples, len(data.heldout))
    x = data.norm.apply(data.heldout.images[:n])
    labels = data.heldout.labels[:n].numpy()
    calib = calibration_images(data, target.calibration_samples) if target.precision == "int8" else None
    with atomic_folder(out_dir) as stage:
        t0 = time.perf_counter()
        progress.log(f"exporting {target.format} {target.precision} to {out_dir}")
        done = fmt.export(model, spec, target, stage, calib)
        seconds = time.perf_counter() - t0
        artifact = done.artifact
        progress.log(f"running {n} held-out samples through {artifact.format} ({Path(artifact.path).name})")
        runner = done.runner or runtime(artifact.format)(artifact)
        try:
            out = runner(x.numpy())
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"{artifact.format} runtime failed on {out_dir / Path(artifact.path).name}: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        final = out_dir / Path(artifact.path).relative_to(stage)
        result = compare(reference_logits(model, x), out, labels, target.tolerances)
        report = ExportReport(
            schema=REPORT_SCHEMA, format=target.format, precision=target.precision, target=target.name,
            runtime=done.runtime or target.runtime, artifact=_artifact_file(artifact, final), config=spec.config,
            metadata=spec.metadata(), n_samples=result.n_samples,
            heldout={"split": data.heldout_name, "samples": n, "of": len(data.heldout)},
            parity=result.parity, accuracy=result.accuracy, tolerances=dataclasses.asdict(target.tolerances),
            calibration=None if calib is None else {"samples": int(len(calib)), "split": "train", "seed": CALIBRATION_SEED},
            **_verdict([*checks, *done.checks, *result.checks]), notes=(*notes, *done.notes, *artifact.notes),
            tools=_versions(fmt.tools), export_seconds=round(seconds, 3),
        )
        report.write(stage)
    return ExportResult(report, final, out_dir / REPORT_FILE)


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


def _verdict(checks: list[Check]) -> dict:
    status = {c.status for c in checks}
    return {"passed": "fail" not in status, "complete": "not-run" not in status, "checks": tuple(checks)}


def _artifact_file(artifact: Artifact, final: Path) -> ArtifactFile:
    """The artifact as the report names it: where it lies once published, hashed now."""
    return ArtifactFile(
        file=final.name, path=str(final), sha256=file_sha256(artifact.path), size_bytes=Path(artifact.path).stat().st_size,
        layout=artifact.layout, batch=artifact.batch if artifact.batch is not None else "dynamic",
        inputs=artifact.inputs, outputs=artifact.outputs,
    )


def _versions(tools: tuple[str, ...]) -> dict[str, str]:
    from metaforge.export.runtime import tool_versions

    return tool_versions(tools)
