"""What to export: a manifold plus a fit document, a profile or a config -> module, spec, data, target.

The one place where the export side meets the rest of the flow (fit -> materialise -> export);
the exporters and checks themselves take any ``nn.Module``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from metaforge.errors import InputError
from metaforge.export import ExportData, ModelSpec
from metaforge.report import Reporter
from metaforge.targets import Target, load_target

if TYPE_CHECKING:
    from metaforge.data import Dataset
    from metaforge.manifold import Manifold


@dataclass
class ExportJob:
    model: nn.Module
    spec: ModelSpec
    data: ExportData
    target: Target
    source: str  # how the config was chosen: "fit FILE", "profile NAME" or "config"


def pick_config(manifold: str | Path, *, fit_json: str | Path | None = None, profile: str | None = None,
                config: str | None = None, reporter: Reporter | None = None) -> tuple[str, Target | None, str]:
    """(config, the target it was fitted for or None, source) from exactly one of the three."""
    given = [name for name, v in (("--fit", fit_json), ("--profile", profile), ("--config", config)) if v]
    if len(given) != 1:
        raise InputError(f"give exactly one of --fit FIT.json, --profile NAME or --config C (got {', '.join(given) or 'none'})")
    if config:
        return config, None, "config"
    if fit_json:
        try:
            doc = json.loads(Path(fit_json).read_text())
        except (OSError, json.JSONDecodeError) as e:
            msg = e.strerror if isinstance(e, OSError) else f"not JSON: {e}"
            raise InputError(f"cannot read fit document {fit_json} ({msg}); write one with `metaforge fit --json`") from None
        if not isinstance(doc, dict) or not doc.get("config"):
            raise InputError(f"{fit_json} has no 'config': it is not a `metaforge fit --json` document")
        if doc.get("feasible") is False:
            why = f" ({doc['message']})" if doc.get("message") else ""
            raise InputError(f"{fit_json} records no feasible config{why}; relax the budget and fit again")
        target = load_target(doc["target"]) if doc.get("target") else None
        return str(doc["config"]), target, f"fit {fit_json}"
    from metaforge.fit import fit
    from metaforge.profiles import load_profile

    prof = load_profile(profile)
    result = fit(manifold, prof, reporter=reporter)
    return str(result.pick.config), load_target(prof.target), f"profile {prof.name}"


def load_job(manifold: str | Path, target: Target, config: str, source: str) -> ExportJob:
    """Materialise ``config`` of ``manifold`` and load its dataset's held-out and training splits."""
    from metaforge.checkpoint import load_manifold

    m = load_manifold(manifold)
    return job_for(m, dataset_of(m), target, config, source)


def dataset_of(m: Manifold) -> Dataset:
    """The dataset a manifold was trained on, with the same seeded splits."""
    from metaforge.data import load_dataset

    tc = m.info.train_config
    return load_dataset(m.info.dataset, tc.get("data_dir"), seed=tc.get("seed", 0))


def job_for(m: Manifold, ds: Dataset, target: Target, config: str, source: str) -> ExportJob:
    """An export job for ``config`` of a loaded manifold (one load serves many configs)."""
    from metaforge.space import ArchConfig

    cfg = m.space.check(ArchConfig.parse(config))
    net = m.materialize(cfg)
    sp = m.space
    spec = ModelSpec(
        input_shape=(sp.in_channels, sp.image_size, sp.image_size), normalization=m.info.normalization,
        classes=tuple(m.info.classes), config=str(cfg), extra={"dataset": m.info.dataset},
    )
    return ExportJob(net, spec, ExportData(heldout=ds.test, calibration=ds.train, norm=m.info.normalization), target, source)
