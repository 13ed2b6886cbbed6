"""Device profiles: what a device can run, what it must meet, and what is known of it.

A profile is a YAML file (``profiles/NAME.yaml`` at the repository root, or any path) read by the
one strict loader (:mod:`metaforge.yamlconf`) into the frozen dataclasses below.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from metaforge.errors import InputError, MetaforgeError
from metaforge.targets import PRECISIONS, Target
from metaforge.yamlconf import YamlConfigError, find_yaml, load_yaml_dataclass, shipped_names

PROFILES_DIR = Path(__file__).resolve().parent / "shipped" / "profiles"  # inside the package, so a wheel carries them
BYTES_PER = {"fp32": 4, "fp16": 2, "int8": 1}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a file name: `check` writes OUT/NAME/


class ProfileError(MetaforgeError):
    """A profile name or file that cannot be used."""

    exit_code = 2


@dataclass(frozen=True)
class Budget:
    """What the picked network must meet; ``None`` means no limit."""

    latency_ms: float | None = None
    latency_stat: Literal["p50", "p90"] = "p50"
    memory_mb: float | None = None
    accuracy_floor: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency_ms", "memory_mb"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"'budget.{name}' must be positive, got {v}")
        if not 0.0 <= self.accuracy_floor <= 1.0:
            raise ValueError(f"'budget.accuracy_floor' must lie in [0, 1], got {self.accuracy_floor}")

    def overridden(self, **overrides: float | None) -> "Budget":
        """This budget with the given (non-None) limits replaced: ``fit``'s options, checked before any torch import."""
        try:
            return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
        except ValueError as e:
            raise InputError(f"bad budget override: {e}") from None


@dataclass(frozen=True)
class DeviceSpec:
    """Numbers for prediction: the analytic roofline and the analytic memory model use them."""

    peak_gflops: dict[str, float]  # per precision: fp32, fp16, int8
    memory_bandwidth_gbs: float
    memory_mb: float  # memory the model may use on the device
    layer_overhead_us: float = 10.0  # fixed cost of one kernel launch / operator
    compute_efficiency: float = 0.3  # share of the peak a small conv reaches
    runtime_overhead_mb: float = 20.0  # the runtime's own memory beside weights and activations
    local: bool = False  # true if the device is the machine metaforge runs on (measurable here)
    threads: int = 0  # runtime threads when measured here; 0 lets the runtime choose
    ort_optimization: Literal["basic", "extended", "all"] = "all"  # ONNX Runtime graph optimisation level

    def __post_init__(self) -> None:
        unknown = sorted(set(self.peak_gflops) - set(PRECISIONS))
        if unknown:
            raise ValueError(f"'device.peak_gflops.{unknown[0]}' is not a precision; valid: {', '.join(PRECISIONS)}")
        for name in ("memory_bandwidth_gbs", "memory_mb", "compute_efficiency"):
            if getattr(self, name) <= 0:
                raise ValueError(f"'device.{name}' must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    target: str  # an export target: targets/NAME.yaml
    budget: Budget
    device: DeviceSpec
    batch: int = 1
    latency_table: str | None = None  # a table from `metaforge profile measure`, relative to the profile
    notes: str = ""
    path: str = field(default="", compare=False)  # set by the loader, not read from YAML
    export_target: Target | None = field(default=None, compare=False, repr=False)  # ``target``, loaded once by the loader

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name) or ".." in self.name:
            raise ValueError(f"'name' must be a plain file name (letters, digits, '.', '_', '-'; no '/' or '..'), "
                             f"got {self.name!r}: outputs are written to a folder of that name")
        if self.batch < 1:
            raise ValueError(f"'batch' must be at least 1, got {self.batch}")

    @property
    def resolved_target(self) -> Target:
        """The export target this profile names, as the loader read it."""
        if self.export_target is None:
            raise ProfileError(f"profile {self.name} was not read by load_profile: its target {self.target!r} is not loaded")
        return self.export_target

    @property
    def format(self) -> str:
        return self.resolved_target.format

    @property
    def precision(self) -> str:
        return self.resolved_target.precision

    def table_path(self) -> Path | None:
        if self.latency_table is None:
            return None
        p = Path(self.latency_table).expanduser()
        return p if p.is_absolute() or not self.path else Path(self.path).parent / p


def list_profiles() -> list[str]:
    """Names of the profiles shipped in ``profiles/``."""
    return shipped_names(PROFILES_DIR)


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by path, else by name in ``profiles/``; the target is resolved and checked."""
    path = find_yaml(name_or_path, PROFILES_DIR, "profile", ProfileError)
    if _top_keys(path) & {"path", "export_target", "format", "precision"}:
        raise YamlConfigError(f"{path}: 'path', 'format' and 'precision' are set by the loader, not the file")
    profile = load_yaml_dataclass(path, Profile)
    return dataclasses.replace(profile, path=str(path), export_target=profile_target(profile.target, path, profile.batch))


def _top_keys(path: Path) -> set:
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, ValueError):
        return set()  # the strict loader reports it
    return set(data) if isinstance(data, dict) else set()


def profile_target(target: str, profile_path: Path, batch: int) -> Target:
    """The export target ``target``, checked against the profile's batch."""
    from metaforge.targets import load_target

    try:
        t = load_target(target)
    except MetaforgeError as e:
        raise YamlConfigError(f"{profile_path}: 'target' {target!r} cannot be used: {e}") from None
    if t.fixed_batch is not None and t.fixed_batch != batch:
        raise YamlConfigError(f"{profile_path}: 'batch' is {batch} but target {target!r} is built for batch {t.fixed_batch}; "
                              "make them agree")
    return t
