"""Resumable training state: written atomically, read back without executing code."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from metaforge.errors import CheckpointError
from metaforge.io import atomic_write

STATE_FILE = "state.pt"
STATE_VERSION = 1


def save_state(run_dir: Path, state: dict) -> None:
    """Write the training state (tensors, numbers, strings and containers of them)."""
    payload = {"version": STATE_VERSION, **state}
    atomic_write(run_dir / STATE_FILE, lambda tmp: torch.save(payload, tmp))


def load_state(run_dir: Path) -> dict | None:
    """The saved state of a run, or None if it has none yet; ``weights_only`` forbids code."""
    path = run_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"training state {path} is unreadable ({first[:160]}); delete it to restart the run") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise CheckpointError(f"training state {path} is of an unknown version; delete it to restart the run")
    return state
