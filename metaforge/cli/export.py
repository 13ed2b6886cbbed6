"""``metaforge export``: one network of a manifold -> an ONNX / TFLite / TensorRT-ready file, checked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from metaforge.cli import app

if TYPE_CHECKING:
    from metaforge.export.report import ExportReport


@app.command()
def export(
    manifold: Annotated[Path, typer.Option(help="A manifold file written by `metaforge train`.")],
    out: Annotated[Path, typer.Option(help="Folder for the artifact and report.json.")],
    fit: Annotated[Optional[Path], typer.Option("--fit", help="A `metaforge fit --json` document: export its pick for its target.")] = None,
    profile: Annotated[Optional[str], typer.Option(help="A device profile: fit it first, then export to its target.")] = None,
    config: Annotated[Optional[str], typer.Option(help="Export this size, e.g. 'w=8,16,32 d=2,2,2'.")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="onnx, tflite or tensorrt (default: the profile's target).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="fp32, fp16 or int8 (default: the target's, else fp32).")] = None,
    target: Annotated[Optional[str], typer.Option(help="An export target by name (targets/) or YAML file; overrides the profile's.")] = None,
    allow_fallback: Annotated[bool, typer.Option("--allow-fallback", help="Export a precision the device runs fast instead of failing (recorded in the report).")] = False,
) -> None:
    """Export a network and gate it against PyTorch on held-out samples; writes OUT/report.json.

    Exit codes: 0 every gate passed, 2 a parity or accuracy gate failed, 4 the export failed.
    """
    from metaforge.cli.progress import RichProgress
    from metaforge.deploy.export import export_pick
    from metaforge.export import GateFailed

    with RichProgress() as progress:
        result = export_pick(manifold, out, fit_json=fit, profile=profile, config=config, fmt=format, precision=precision,
                             target=target, allow_fallback=allow_fallback, progress=progress)
    print_summary(result.report, result.report_path)
    if not result.passed:
        raise GateFailed.from_report(result.report, result.report_path)


def print_summary(report: ExportReport, report_path: Path) -> None:
    p, a, art = report.parity, report.accuracy, report.artifact
    typer.echo(f"{report.target}: '{report.config}' -> {art.path} ({art.size_bytes:,} bytes, sha256 {art.sha256[:12]})")
    typer.echo(f"  {report.n_samples} held-out samples: max abs diff {p.max_abs_diff:.3g}, SQNR {p.sqnr_db:.1f} dB, "
               f"top-1 agreement {p.top1_agreement:.4f}; accuracy {a.artifact:.4f} (PyTorch {a.reference:.4f})")
    for c in report.checks:
        typer.echo(f"  [{c.status}] {c.name}: {c.detail}")
    for note in report.notes:
        typer.echo(f"  note: {note}")
    verdict = "passed" if report.passed else "FAILED"
    if report.passed and not report.complete:
        verdict = "passed (some checks not run here)"
    typer.echo(f"{verdict}; report: {report_path}")
