"""``metaforge profile list|show|measure``: device profiles and their per-layer latency tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from metaforge.cli import app
from metaforge.cli.console import make_console
from metaforge.cli.progress import RichProgress

profile_app = typer.Typer(help="Device profiles: budgets, export target and what is known of the device.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("list")
def list_cmd() -> None:
    """The shipped profiles, their targets and budgets."""
    from metaforge.profiles import list_profiles, load_profile

    table = Table(title="device profiles")
    for col in ("name", "target", "batch", "latency budget", "memory budget"):
        table.add_column(col)
    for name in list_profiles():
        p = load_profile(name)
        b = p.budget
        table.add_row(p.name, p.target, str(p.batch), f"{b.latency_ms:g} ms {b.latency_stat}" if b.latency_ms else "-",
                      f"{b.memory_mb:g} MB" if b.memory_mb else "-")
    make_console().print(table)


@profile_app.command("show")
def show(name: Annotated[str, typer.Argument(help="A profile name or a YAML file.")]) -> None:
    """Every field of a profile, as the loader read it (with the target's format and precision)."""
    from metaforge.profiles import load_profile

    p = load_profile(name)
    d = dataclasses.asdict(dataclasses.replace(p, export_target=None))
    del d["export_target"]
    d.update(format=p.format, precision=p.precision)
    typer.echo(yaml.safe_dump(d, sort_keys=False, width=100).rstrip())


@profile_app.command("measure")
def measure(
    name: Annotated[str, typer.Argument(help="A profile whose runtime is on this machine (e.g. host-cpu).")],
    manifold: Annotated[Path, typer.Option(help="The manifold whose space the table must cover (widths, image size).")],
    out: Annotated[Path, typer.Option(help="Latency table to write (JSON).")],
    points: Annotated[int, typer.Option(min=2, help="Widths measured per stage (the rest is interpolated).")] = 6,
    calibration: Annotated[int, typer.Option(min=0, help="Whole networks timed to calibrate the sum of layers and the memory model.")] = 10,
) -> None:
    """Time every layer shape of a manifold's space in the profile's runtime: a table for `fit --table`."""
    from metaforge.checkpoint import read_space
    from metaforge.io import ensure_writable
    from metaforge.profiles import load_profile

    ensure_writable(out)
    p = load_profile(name)
    space = read_space(manifold)
    from metaforge.fit.latency import MeasureError, runtime_available

    if reason := runtime_available(p):  # another device: refused before torch is imported
        raise MeasureError(reason)
    from metaforge.fit.measure_table import build_table  # torch: only once the inputs are known to be good

    with RichProgress() as progress:
        table = build_table(p, space, points=points, calibration=calibration, progress=progress)
    path = table.save(out)
    cal = table.calibration.get(p.budget.latency_stat, [1.0, 0.0])
    typer.echo(f"wrote {path}: {len(table.entries)} layer shapes; network = {cal[0]:.3f} x sum(layers) + {cal[1]:.4f} ms; "
               f"memory = {table.memory[0]:.2f} MB + {table.memory[1]:.2f} x (weights + activations)"
               if table.memory else f"wrote {path}: {len(table.entries)} layer shapes")
