"""``metaforge fit``: the most accurate config of a manifold within a device profile's budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from metaforge.cli import app
from metaforge.cli.console import make_console
from metaforge.cli.progress import RichProgress


def print_result(result, console: Console | None = None) -> None:
    console = console or make_console()
    stat = result.budget.latency_stat
    table = Table(title=f"Pareto front on {result.profile.name} ({result.profile.target}, batch {result.profile.batch})")
    for col in ("config", "val top-1", f"latency {stat} ms", "memory MB", "params", "MFLOPs", ""):
        table.add_column(col, justify="left" if col == "config" else "right", no_wrap=col == "config")
    rows = list(result.pareto)
    if result.pick and all(c.config != result.pick.config for c in rows):
        rows.append(result.pick)
    for c in rows:
        mark = "pick" if result.pick and c.config == result.pick.config and result.feasible else ""
        mark = mark or ("over" if not c.within(result.budget) else "")
        table.add_row(str(c.config), c.accuracy_text, f"{c.latency_ms:.4g} ({c.latency_source})",
                      f"{c.memory_mb:.4g} ({c.memory_source})", f"{c.params:,}", f"{c.mflops:.3f}", mark)
    console.print(table)
    for c in result.measured:
        console.print(f"measured '{c.config}': {c.latency_ms:.4g} ms {stat}, {c.memory_mb:.4g} MB -> "
                      f"{'within budget' if c.within(result.budget) else 'over budget'}")
    b = result.budget
    console.print(f"budget: latency {b.latency_ms or '-'} ms ({stat}), memory {b.memory_mb or '-'} MB, "
                  f"accuracy floor {b.accuracy_floor:g}; {result.evaluated} configs looked at "
                  f"({result.method}{f', {result.confirmed} predictions confirmed by evaluation' if result.method == 'accuracy-model' else ''}) "
                  f"in {result.seconds:.1f} s")
    from metaforge.fit.latency import runtime_available

    if result.pick and result.pick.latency_source == "roofline" and runtime_available(result.profile) is None:
        console.print(f"[dim]latency from the analytic roofline; a table measured on the device predicts far better: "
                      f"`metaforge profile measure {result.profile.name} --manifold {result.manifold} --out TABLE`, then --table TABLE[/]")
    if result.latency_table:
        console.print(f"latency table: {result.latency_table}")
    if result.pick and result.feasible:
        p = result.pick
        console.print(f"[bold]pick[/]: {p.config}  val top-1 {p.accuracy_text}, {p.latency_ms:.4g} ms {stat} "
                      f"({p.latency_source}), {p.memory_mb:.4g} MB ({p.memory_source})")


@app.command()
def fit(
    manifold: Annotated[Path, typer.Argument(help="A manifold file written by `metaforge train`.")],
    profile: Annotated[str, typer.Option(help="A device profile: a name from `metaforge profile list` or a YAML file.")],
    measure: Annotated[bool, typer.Option("--measure", help="Re-measure the pick in the real runtime; walk down the ranking until one meets the budget.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the fit document (input of `metaforge export --fit`).")] = None,
    plot_path: Annotated[Optional[Path], typer.Option("--plot", help="Draw accuracy vs latency of the front to this PNG.")] = None,
    latency_ms: Annotated[Optional[float], typer.Option(help="Override the profile's latency budget (ms).")] = None,
    memory_mb: Annotated[Optional[float], typer.Option(help="Override the profile's memory budget (MB).")] = None,
    accuracy_floor: Annotated[Optional[float], typer.Option(help="Override the profile's accuracy floor (0..1).")] = None,
    table: Annotated[Optional[Path], typer.Option(help="A latency table from `metaforge profile measure` (else the profile's, else the roofline).")] = None,
    max_evals: Annotated[int, typer.Option(help="Most configs whose accuracy the search evaluates (manifolds without an accuracy model).")] = 300,
    time_cap: Annotated[float, typer.Option(help="Seconds the search may spend evaluating accuracy.")] = 120.0,
    seed: Annotated[int, typer.Option(help="Seed of the evolutionary search and of the accuracy model's candidate pool.")] = 0,
    confirm: Annotated[int, typer.Option(min=1, help="Most predictions of the manifold's accuracy model confirmed by a real evaluation.")] = 3,
) -> None:
    """Pick the most accurate network of a manifold that meets a device's latency and memory budgets.

    Exit code 3 when no config meets the budget; the nearest feasible config is printed (and written
    with --json, with feasible: false).
    """
    from metaforge.io import ensure_writable

    from metaforge.profiles import load_profile

    for path in (json_path, plot_path):
        if path is not None:
            ensure_writable(path)
    prof = load_profile(profile)  # a bad profile or budget is answered before torch is imported
    prof.budget.overridden(latency_ms=latency_ms, memory_mb=memory_mb, accuracy_floor=accuracy_floor)
    from metaforge.fit import InfeasibleBudget
    from metaforge.fit import fit as run_fit
    from metaforge.fit.document import write_json
    from metaforge.fit.plot import plot
    from metaforge.fit.ranked import RankSettings

    try:
        with RichProgress() as progress:
            result = run_fit(manifold, prof, latency_ms=latency_ms, memory_mb=memory_mb, accuracy_floor=accuracy_floor,
                             table=table, measure=measure, seed=seed, max_evals=max_evals, time_cap_s=time_cap, progress=progress,
                             rank=RankSettings(max_confirm=confirm))
    except InfeasibleBudget as e:
        print_result(e.result)
        if json_path:
            write_json(e.result, json_path)
        if plot_path:
            plot(e.result, plot_path)
        raise
    print_result(result)
    if json_path:
        typer.echo(f"wrote {write_json(result, json_path)}")
    if plot_path:
        typer.echo(f"wrote {plot(result, plot_path)}")
