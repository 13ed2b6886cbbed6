"""``metaforge check``: the CI gate: for every profile, fit -> export -> run -> accuracy, parity, budgets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from metaforge.cli import app
from metaforge.errors import MetaforgeError


class CheckFailed(MetaforgeError):
    """At least one gate failed; ``exit_code`` says which kind (see ``metaforge check --help``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


@app.command()
def check(
    manifold: Annotated[Path, typer.Option(help="A manifold file written by `metaforge train`.")],
    profile: Annotated[list[str], typer.Option(help="A device profile (repeat for several): name or YAML file.")],
    out: Annotated[Path, typer.Option(help="Folder for each profile's artifact and report.json.")] = Path("metaforge-check"),
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every profile's gates and export report here.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Write a JUnit XML file: one test case per profile x gate.")] = None,
    time_cap: Annotated[float, typer.Option(help="Seconds each fit's search may spend evaluating accuracy.")] = 120.0,
) -> None:
    """Fit each profile, export its pick to the profile's target, run it in its runtime and gate it.

    Exit codes: 0 every gate passed, 2 an accuracy or parity gate failed, 3 a latency or memory
    budget failed, 4 an export failed. Budgets are measured where the runtime is here, otherwise
    predicted and labelled so; checks that cannot run here (a TensorRT engine without a GPU) are
    reported as not run (JUnit: skipped), never as passed.
    """
    from metaforge.io import ensure_writable

    ensure_writable(out, folder=True)
    for path in (json_path, junit):
        if path is not None:
            ensure_writable(path)
    from metaforge.cli.progress import RichProgress
    from metaforge.deploy.check import check_profiles, exit_code, write_json, write_junit

    with RichProgress() as progress:
        runs = check_profiles(manifold, list(profile), out, time_cap_s=time_cap, progress=progress)
    if json_path:
        write_json(runs, json_path)
    if junit:
        write_junit(runs, junit)
    for run in runs:
        typer.echo(f"{run.profile} ({run.target}): '{run.config}'")
        for g in run.gates:
            typer.echo(f"  [{g.status}] {g.gate}: {g.detail}")
    code = exit_code(runs)
    failed = [f"{g.profile}/{g.gate}" for r in runs for g in r.gates if g.status == "fail"]
    if code:
        raise CheckFailed(f"{len(failed)} gate(s) failed: {', '.join(failed)}", code)
    typer.echo("all gates passed" + (" (some checks not run here)" if any(g.status == "not-run" for r in runs for g in r.gates) else ""),
               file=sys.stdout)
