"""Resumable training state: written atomically and durably, read back without executing code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from metaforge.errors import CheckpointError
from metaforge.io import atomic_write

STATE_FILE = "state.pt"
STATE_VERSION = 1


def save_state(run_dir: Path, state: dict) -> None:
    """Write the training state (tensors, numbers, strings and containers of them).

    The bytes reach the disk (fsync) before the rename: a kill, or a power cut, at any moment
    leaves either the previous state or this one, never a torn file.
    """
    payload = {"version": STATE_VERSION, **state}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(run_dir / STATE_FILE, write)


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


def remove_partial_writes(run_dir: Path) -> None:
    """Delete temp files a killed process left behind mid-write (the renamed files are whole)."""
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def rng_states(device: torch.device) -> dict:
    """torch's global RNG states, for a resume that continues every random stream."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict | None, device: torch.device) -> None:
    if not states:
        return
    torch.set_rng_state(states["cpu"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)
