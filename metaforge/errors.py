"""One exception family for the library; only the CLI turns these into messages and exit codes."""

from __future__ import annotations


class MetaforgeError(Exception):
    """Base class: the message is one line that says what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(MetaforgeError):
    """A network config is malformed or outside a manifold's space."""

    exit_code = 2


class DataError(MetaforgeError):
    """A dataset is missing, malformed or unknown."""

    exit_code = 2


class CheckpointError(MetaforgeError):
    """A manifold, model or training-state file is corrupt, foreign or of an unknown version."""

    exit_code = 2


class InputError(MetaforgeError):
    """An option, or a document the user gave (a fit document, a file where a folder belongs), cannot be used."""

    exit_code = 2


class OutputError(MetaforgeError):
    """An output path cannot be written (its folder is a file, read-only, or not creatable)."""

    exit_code = 2
