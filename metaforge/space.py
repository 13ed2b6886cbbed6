"""Architecture configs and spaces: how a network size is written, parsed and checked.

A config is written the same way everywhere (CLI, JSON, tables): ``w=16,32,64 d=3,3,3`` gives
the width (channels) and depth (basic blocks) of every stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from metaforge.errors import ConfigError

PRESETS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "tiny": ((8, 16, 32), (2, 2, 2)),
    "resnet20": ((16, 32, 64), (3, 3, 3)),
    "resnet32": ((16, 32, 64), (5, 5, 5)),
    "resnet56": ((16, 32, 64), (9, 9, 9)),
}

_CONFIG_RE = re.compile(r"^\s*w\s*=\s*([\d,\s]+?)\s+d\s*=\s*([\d,\s]+?)\s*$")


@dataclass(frozen=True, order=True)
class ArchConfig:
    """Width and depth of every stage of a CIFAR-style ResNet."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.depths) or not self.widths:
            raise ConfigError(f"config needs one width and one depth per stage, got {self}")
        if any(int(v) < 1 for v in self.widths + self.depths):
            raise ConfigError(f"widths and depths must be positive integers, got {self}")

    def __str__(self) -> str:
        return f"w={','.join(map(str, self.widths))} d={','.join(map(str, self.depths))}"

    @classmethod
    def parse(cls, text: str) -> "ArchConfig":
        """Parse ``w=16,32,64 d=3,3,3``; a preset name (``resnet20``) also works."""
        if text.strip() in PRESETS:
            widths, depths = PRESETS[text.strip()]
            return cls(widths, depths)
        match = _CONFIG_RE.match(text)
        if not match:
            raise ConfigError(
                f"cannot read config {text!r}: write it as 'w=16,32,64 d=3,3,3' "
                f"(one width and one depth per stage) or a preset ({', '.join(PRESETS)})"
            )
        try:
            widths = tuple(int(v) for v in match.group(1).replace(" ", "").split(",") if v)
            depths = tuple(int(v) for v in match.group(2).replace(" ", "").split(",") if v)
        except ValueError:
            raise ConfigError(f"cannot read config {text!r}: widths and depths must be integers") from None
        return cls(widths, depths)


@dataclass(frozen=True)
class ArchSpace:
    """The sizes a manifold covers: every stage's width and depth within [min, max]."""

    in_channels: int
    num_classes: int
    image_size: int
    max_widths: tuple[int, ...]
    max_depths: tuple[int, ...]
    min_widths: tuple[int, ...]
    min_depths: tuple[int, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """C x H x W of one input image (without the batch)."""
        return (self.in_channels, self.image_size, self.image_size)

    @property
    def num_stages(self) -> int:
        return len(self.max_widths)

    @property
    def full(self) -> ArchConfig:
        return ArchConfig(self.max_widths, self.max_depths)

    @property
    def smallest(self) -> ArchConfig:
        return ArchConfig(self.min_widths, self.min_depths)

    def describe(self) -> str:
        """Human-readable valid ranges, used in every out-of-space error."""
        w = ",".join(f"{lo}..{hi}" for lo, hi in zip(self.min_widths, self.max_widths))
        d = ",".join(f"{lo}..{hi}" for lo, hi in zip(self.min_depths, self.max_depths))
        return f"w={w} d={d}"

    def check(self, config: ArchConfig) -> ArchConfig:
        """Return the config if it lies in the space, else raise with the valid ranges."""
        ok = len(config.widths) == self.num_stages and all(
            lo <= v <= hi
            for v, lo, hi in zip(
                config.widths + config.depths,
                self.min_widths + self.min_depths,
                self.max_widths + self.max_depths,
            )
        )
        if not ok:
            raise ConfigError(f"config '{config}' is outside this manifold's space; valid ranges: {self.describe()}")
        return config

    def scaled(self, width_frac: float, depths: tuple[int, ...] | None = None) -> ArchConfig:
        """A config with every stage width at ``width_frac`` of its maximum (rounded, clipped)."""
        widths = tuple(
            min(hi, max(lo, int(round(width_frac * hi)))) for lo, hi in zip(self.min_widths, self.max_widths)
        )
        return self.check(ArchConfig(widths, depths or self.max_depths))

    def to_dict(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "max_widths": list(self.max_widths),
            "max_depths": list(self.max_depths),
            "min_widths": list(self.min_widths),
            "min_depths": list(self.min_depths),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ArchSpace":
        return cls(
            in_channels=int(d["in_channels"]),
            num_classes=int(d["num_classes"]),
            image_size=int(d["image_size"]),
            max_widths=tuple(int(v) for v in d["max_widths"]),
            max_depths=tuple(int(v) for v in d["max_depths"]),
            min_widths=tuple(int(v) for v in d["min_widths"]),
            min_depths=tuple(int(v) for v in d["min_depths"]),
        )


def preset_shape(preset: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(widths, depths) of the largest network of a preset; an unknown name is a one-line error."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[preset]


def make_space(
    preset: str,
    in_channels: int,
    num_classes: int,
    image_size: int,
    min_width_frac: float = 0.25,
    min_depth: int = 1,
) -> ArchSpace:
    """The space of a preset: widths down to ``min_width_frac`` of full, depths down to ``min_depth``."""
    widths, depths = preset_shape(preset)
    return ArchSpace(
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        max_widths=widths,
        max_depths=depths,
        min_widths=tuple(max(1, math.ceil(min_width_frac * w)) for w in widths),
        min_depths=tuple(min(min_depth, d) for d in depths),
    )
