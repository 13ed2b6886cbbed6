"""A config of a loaded manifold as :mod:`metaforge.export` takes it: a module, its spec and its data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from metaforge.export import ExportData, ModelSpec
from metaforge.space import ArchConfig
from metaforge.targets import Target

if TYPE_CHECKING:
    from torch import nn

    from metaforge.data import Dataset
    from metaforge.manifold import Manifold


@dataclass(frozen=True, eq=False)
class ExportJob:
    model: nn.Module
    spec: ModelSpec
    data: ExportData
    target: Target
    source: str  # how the config was chosen: "fit FILE", "profile NAME" or "config"


def job_for(m: Manifold, config: ArchConfig, target: Target, source: str, ds: Dataset | None = None) -> ExportJob:
    """An export job for ``config`` of ``m`` (pass ``ds``, its dataset, when one load serves many configs)."""
    net = m.materialize(config)  # checks the config against the space
    ds = ds if ds is not None else m.dataset()
    spec = ModelSpec(input_shape=m.space.input_shape, normalization=m.info.normalization, classes=tuple(m.info.classes),
                     config=str(config), extra={"dataset": m.info.dataset})
    return ExportJob(net, spec, ExportData(heldout=ds.test, calibration=ds.train, norm=m.info.normalization), target, source)
