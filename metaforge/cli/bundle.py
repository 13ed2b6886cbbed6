"""``metaforge bundle`` and ``metaforge profile ingest``: measure on the device itself, then fit with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from metaforge.cli import app
from metaforge.cli.console import make_console
from metaforge.cli.profile import profile_app
from metaforge.cli.progress import RichProgress


@app.command()
def bundle(
    manifold: Annotated[Path, typer.Option(help="A manifold file written by `metaforge train`.")],
    profile: Annotated[str, typer.Option(help="The device profile to bundle for (its target decides the model format: "
                                               "ONNX for onnxruntime, .tflite for LiteRT, ONNX + engine build on the device for TensorRT).")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write (built beside it, then renamed into place).")],
    fit: Annotated[Optional[Path], typer.Option("--fit", help="A `metaforge fit --json` document: bundle its pick (and --sweep configs from its front). "
                                                              "Without it, the profile is fitted now.")] = None,
    sweep: Annotated[int, typer.Option(help="Also bundle N configs spread over the front (evenly in log latency): "
                                            "whole networks that `profile ingest` calibrates the latency table on. 0 bundles the pick only; "
                                            "8 or more gives a calibration worth trusting.")] = 0,
    samples: Annotated[int, typer.Option(help="Held-out test samples with PyTorch reference outputs (all of the split if it has fewer).")] = 1000,
    runs: Annotated[int, typer.Option(help="The runner's default number of timed runs per model (at least 200, for p99).")] = 1000,
    warmup: Annotated[int, typer.Option(help="The runner's default number of untimed runs first.")] = 50,
    max_evals: Annotated[int, typer.Option(help="Without --fit: most configs the fit evaluates.")] = 300,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
) -> None:
    """Write a self-contained folder to copy to a device: models, samples, references, manifest, run.py.

    On the device, `python3 run.py` (Python 3.6+, numpy and the device's runtime only; no pip, no network) times every model (warm-up, then p50/p90/p99 of the timed runs), checks parity and accuracy against the bundled references, records the device, runtime and clocks, and writes results.json. Back here, `metaforge profile ingest results.json --profile NAME` turns it into the profile's latency table.

    Example: metaforge bundle --manifold m.safetensors --profile raspberry-pi-4 --sweep 8 --out pi4-bundle
    """
    from metaforge.bundle import BundleError
    from metaforge.bundle.build import BundleOptions, build_bundle

    try:
        opts = BundleOptions(sweep=sweep, samples=samples, warmup=warmup, runs=runs, max_evals=max_evals)
    except ValueError as e:
        raise BundleError(f"bad bundle option: {e}") from None
    with RichProgress() as progress:
        path = build_bundle(manifold, profile, out, fit_json=fit, options=opts, force=force, progress=progress)
    import json

    m = json.loads((path / "manifest.json").read_text())
    typer.echo(f"wrote {path}: {len(m['models'])} {m['target']['format']} {m['target']['precision']} models "
               f"({', '.join(x['config'] for x in m['models'])}), {m['samples']['n']} samples ({m['samples']['note']})")
    typer.echo(f"next: copy {path} to the device, run `python3 run.py` in it, copy results.json back, then "
               f"`metaforge profile ingest results.json --profile {m['profile']}`")


@profile_app.command("ingest")
def ingest(
    results: Annotated[Path, typer.Argument(help="results.json written by a bundle's run.py on the device.")],
    profile: Annotated[str, typer.Option(help="The profile the bundle was made for (checked against the results).")],
    out: Annotated[Optional[Path], typer.Option(help="Latency table to write (default: the profile's latency_table, else NAME.table.json).")] = None,
    table: Annotated[Optional[Path], typer.Option(help="Recalibrate this per-layer table (default: the profile's, else its roofline).")] = None,
) -> None:
    """Turn a device's measurements into the profile's latency table; show how far predictions were off.

    The bundle timed whole networks; the table keeps per-layer entries (an existing table's, or the roofline's on the manifold's layer grid) and fits `network = scale x sum(layers) + offset` to the measurements. Pass the table to `metaforge fit --table` (or set the profile's latency_table).
    """
    from metaforge.bundle.ingest import Row
    from metaforge.bundle.ingest import ingest as run

    r = run(results, profile, out=out, base_table=table)
    pct = lambda v: "-" if v is None else f"{100 * v:+.1f}%"  # noqa: E731
    sources = sorted({row.before_source for row in r.rows})
    t = Table(title=f"{r.table.profile}: latency {r.stat} in ms, measured on {r.table.machine or 'the device'}; "
                    f"before = what was predicted ({', '.join(sources)})")
    for col in ("model", "config", "measured", "before", "error", "after", "error", "leave-one-out"):
        t.add_column(col, justify="left" if col in ("model", "config") else "right", no_wrap=col == "config")
    for row in r.rows:
        t.add_row(row.id, row.config, f"{row.measured:.4g}", "-" if row.before is None else f"{row.before:.4g}",
                  pct(Row.err(row.before, row.measured)), f"{row.after:.4g}", pct(Row.err(row.after, row.measured)),
                  pct(Row.err(row.loo, row.measured)))
    make_console().print(t)
    for s in r.skipped:
        typer.echo(f"skipped {s}")
    cal = r.table.calibration[r.stat]
    mae = lambda k: "-" if r.mean_abs_error(k) is None else f"{100 * r.mean_abs_error(k):.1f}%"  # noqa: E731
    typer.echo(f"mean |error|: before {mae('before')}, after {mae('after')}, leave-one-out {mae('loo')}; {r.method[r.stat]}: network = {cal[0]:.4g} x sum(layers) + {cal[1]:.4g} ms "
               f"over {r.basis}")
    typer.echo(f"wrote {r.path}; next: metaforge fit MANIFOLD --profile {r.table.profile} --table {r.path}")

