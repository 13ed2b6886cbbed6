"""One strict loader: YAML -> frozen dataclass, naming the file, the key and what is valid.

PyYAML reads ``1e-3`` as a string and ``None`` as 'None'; this loader converts by the dataclass's
type hints instead, and rejects unknown keys, missing fields and wrong types with one line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from metaforge.errors import MetaforgeError

T = TypeVar("T")


class YamlConfigError(MetaforgeError):
    """A profile or target file is malformed."""

    exit_code = 2


def shipped_names(folder: Path) -> list[str]:
    """Names of the YAML files shipped in ``folder`` (profiles/, targets/)."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def find_yaml(name_or_path: str | Path, folder: Path, kind: str, error: type[MetaforgeError]) -> Path:
    """A file path as given, else ``folder/NAME.yaml``; else ``error`` listing the shipped names."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(shipped_names(folder)) or "none"
        raise error(f"no {kind} {str(name_or_path)!r}: give a {kind} file or one of: {names}")
    return path


def load_yaml_dataclass(path: str | Path, cls: type[T]) -> T:
    """Read ``path`` and build ``cls`` from it strictly."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise YamlConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise YamlConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise YamlConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return build(cls, data, str(path), "")


def build(cls: type[T], data: Any, file: str, prefix: str) -> T:
    """Build dataclass ``cls`` from a mapping; nested dataclasses use dotted key names in errors."""
    if not isinstance(data, dict):
        raise YamlConfigError(f"{file}: '{prefix.rstrip('.')}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise YamlConfigError(f"{file}: unknown key '{prefix}{unknown[0]}'; valid keys: {', '.join(fields)}")
    hints = get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise YamlConfigError(f"{file}: missing required key '{key}'")
            continue
        kwargs[name] = _convert(hints[name], data[name], file, key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise YamlConfigError(f"{file}: {e}") from None


def _convert(tp: Any, value: Any, file: str, key: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return _convert(a, value, file, key)
            except YamlConfigError as e:
                errors.append(str(e))
        raise YamlConfigError(errors[0] if errors else f"{file}: bad value for '{key}'")
    if origin is typing.Literal:
        if value not in args:
            raise YamlConfigError(f"{file}: '{key}' is {value!r}; valid values: {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise YamlConfigError(f"{file}: '{key}' must be a list, got {value!r}")
        return tuple(_convert(args[0], v, file, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise YamlConfigError(f"{file}: '{key}' must be a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, file, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, file, f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise YamlConfigError(f"{file}: '{key}' must be true or false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool):
            raise YamlConfigError(f"{file}: '{key}' must be a number, got {value!r}")
        try:
            number = float(value) if tp is float else int(value)
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if tp is int and isinstance(value, str) and str(number) != value.strip():
                raise ValueError
        except (TypeError, ValueError):
            raise YamlConfigError(f"{file}: '{key}' must be {'an integer' if tp is int else 'a number'}, got {value!r}") from None
        return number
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise YamlConfigError(f"{file}: '{key}' must be a string, got {value!r}")
        return str(value)
    return value
