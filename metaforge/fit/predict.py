"""The one latency predictor: a device's measured per-layer table when there is one, else the roofline.

``fit`` costs every candidate with it and ``bundle`` records what it predicted beside what the
device will measure; both must say the same thing for the same config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metaforge.errors import InputError
from metaforge.fit.latency import roofline_ms
from metaforge.fit.shapes import Layer
from metaforge.fit.table import LatencyTable
from metaforge.profiles import Profile


@dataclass(frozen=True)
class LatencyPredictor:
    profile: Profile
    table: LatencyTable | None = None
    table_path: Path | None = None

    @property
    def source(self) -> str:
        return "table" if self.table is not None else "roofline"

    def __call__(self, layers: list[Layer], stat: str) -> float:
        """Predicted latency in ms of the layers of one network, for ``stat`` (p50 or p90)."""
        return self.table.predict_ms(layers, stat) if self.table is not None else roofline_ms(layers, self.profile)


def predictor_for(profile: Profile, table: str | Path | None = None) -> LatencyPredictor:
    """``table`` (else the profile's), checked to be measured for this profile; the roofline without one."""
    path = Path(table) if table else profile.table_path()
    if path is None:
        return LatencyPredictor(profile)
    tab = LatencyTable.load(path)
    if (tab.profile, tab.batch, tab.threads) != (profile.name, profile.batch, profile.device.threads):
        raise InputError(f"latency table {path} was measured for {tab.profile} (batch {tab.batch}, {tab.threads} threads), "
                         f"not {profile.name} (batch {profile.batch}, {profile.device.threads} threads): "
                         f"measure one with `metaforge profile measure {profile.name}`")
    return LatencyPredictor(profile, tab, path)
