"""The INR's settings, apart from the INR itself: a training config carries them without importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from metaforge.errors import ConfigError

WIDTH_MAPS = ("resample", "nested")


@dataclass(frozen=True)
class INRConfig:
    hidden: int = 32
    layers: int = 2
    fourier_bands: int = 3
    code_dim: int = 8
    slot_dim: int = 8
    weight_grid: bool = True  # a learnable full-resolution grid per layer, sampled bilinearly
    # Which coordinate a channel has: "resample", its relative position (a + 0.5) / C (a narrower
    # layer resamples the whole axis); "nested", its absolute index (a + 0.5) / C_max (a narrower
    # layer is the first C channels, as slimmable networks and OFA slice)
    width_map: str = "resample"

    def __post_init__(self) -> None:
        if self.width_map not in WIDTH_MAPS:
            raise ConfigError(f"unknown width map {self.width_map!r}; choose one of: {', '.join(WIDTH_MAPS)}")

    def to_dict(self) -> dict:
        return asdict(self)
