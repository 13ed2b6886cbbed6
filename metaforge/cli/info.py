"""``metaforge info``: the space a manifold covers and its accuracy-vs-size table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from metaforge.cli import app
from metaforge.cli.console import make_console

if TYPE_CHECKING:
    from metaforge.manifold import Manifold


def print_table(manifold: Manifold, console: Console | None = None) -> None:
    console = console or make_console()
    info = manifold.info
    console.print(f"dataset [bold]{info.dataset}[/] ({len(info.classes)} classes), BN mode {info.bn_mode}, K={info.samples} below the seen widths")
    console.print(f"space {manifold.space.describe()}  (full '{manifold.space.full}')")
    seen = "; ".join(f"stage {s}: w {list(w)} d {list(d)}" for s, (w, d) in enumerate(zip(info.seen_widths, info.seen_depths)))
    console.print(f"seen in training: {seen}")
    inr_params = sum(p.numel() for p in manifold.inr.parameters())
    console.print(f"INR parameters: {inr_params:,}")
    if info.base_accuracy is not None:
        console.print(f"base network (trained alone, full size) test top-1: {info.base_accuracy:.4f}")
    table = Table(title="accuracy vs size (test split)")
    for col in ("config", "params", "MFLOPs", "FLOPs %", "test top-1", "seen"):
        table.add_column(col, justify="left" if col == "config" else "right")
    for r in info.accuracy:
        table.add_row(r["config"], f"{r['params']:,}", f"{r['mflops']:.2f}", f"{100 * r['flops_frac']:.1f}", f"{r['top1']:.4f}", "seen" if r["seen"] else "unseen")
    console.print(table)
    record = manifold.accuracy_record
    console.print(record.describe() if record is not None else
                  "accuracy model: none (written before metaforge stored one): fit evaluates candidates one by one")
    wall = info.train_config.get("wall_time_s")
    if wall is not None:
        console.print(f"training wall time: {wall:.0f} s")


@app.command()
def info(
    manifold: Annotated[Path, typer.Argument(help="A manifold file written by `metaforge train`.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON instead of a table.")] = False,
) -> None:
    """Show the sizes a manifold covers and its measured accuracy at a grid of sizes."""
    from metaforge.checkpoint import load_manifold, read_header

    if json_out:
        header = read_header(manifold)
        typer.echo(json.dumps({k: json.loads(v) if k in ("space", "inr", "info", "accuracy_model") else v for k, v in header.items()}, indent=2))
        return
    print_table(load_manifold(manifold))
