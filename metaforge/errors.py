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
