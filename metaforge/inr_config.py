"""The INR's settings, apart from the INR itself: a training config carries them without importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class INRConfig:
    hidden: int = 32
    layers: int = 2
    fourier_bands: int = 3
    code_dim: int = 8
    slot_dim: int = 8
    weight_grid: bool = True  # a learnable full-resolution grid per layer, sampled bilinearly

    def to_dict(self) -> dict:
        return asdict(self)
