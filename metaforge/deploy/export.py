"""``export_pick``: one config of a manifold -> a device file checked against PyTorch (``metaforge export``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from metaforge.deploy.pick import choose, config_of
from metaforge.io import ensure_writable
from metaforge.progress import Progress
from metaforge.targets import load_target, resolve_target

if TYPE_CHECKING:
    from metaforge.export.pipeline import ExportResult


def export_pick(manifold: str | Path, out: str | Path, *, fit_json: str | Path | None = None, profile: str | None = None,
                config: str | None = None, fmt: str | None = None, precision: str | None = None, target: str | None = None,
                allow_fallback: bool = False, progress: Progress | None = None) -> ExportResult:
    """Export the config that ``fit_json``, ``profile`` or ``config`` names to the target they (or ``target``,
    ``fmt``, ``precision``) give; the manifold is loaded once, after every input was checked."""
    from metaforge.checkpoint import read_space

    ensure_writable(out, folder=True)
    choice = choose(manifold, fit_json=fit_json, profile=profile, config=config)
    tgt = resolve_target(load_target(target) if target else choice.target, fmt, precision)
    if choice.config is not None:
        read_space(manifold).check(choice.config)
    from metaforge.checkpoint import load_manifold  # torch from here on: every input above was good
    from metaforge.deploy.job import job_for
    from metaforge.export.pipeline import export_model

    m = load_manifold(manifold)
    job = job_for(m, config_of(choice, m, progress), tgt, choice.source)
    return export_model(job.model, job.spec, job.target, out, job.data, allow_fallback=allow_fallback, progress=progress)
