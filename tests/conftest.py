"""Shared fixtures: one tiny manifold trained on the embedded digits data per test session."""

from __future__ import annotations

import os

# One thread per process: the test models are tiny, several tests run 2-3 processes at once on a
# 2-core machine, and two threads each made the suite 3x slower there (14 min instead of 4-5).
# Set before torch is imported so that subprocesses inherit it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # in case a plugin imported torch before the variable was set

from metaforge.progress import Progress  # noqa: E402
from metaforge.train.config import TrainConfig  # noqa: E402

TINY = dict(preset="tiny", base_epochs=10, epochs=20, seed=0, device="cpu")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(manifold path, manifold, training config) of a tiny digits manifold trained once."""
    from metaforge.train.run import train

    out = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    cfg = TrainConfig(**TINY)
    manifold = train(cfg, out)
    return out, manifold, cfg


class Crash(Exception):
    """What :class:`CrashAt` raises: a crash in the middle of training, as a kill would leave it."""


class CrashAt(Progress):
    """A progress reporter that crashes training after ``after`` steps of the phase named ``phase``."""

    def __init__(self, phase: str, after: int) -> None:
        self.target, self.after, self.current, self.n = phase, after, None, 0

    def phase(self, name, total, done=0):
        self.current = name

    def advance(self, steps=1, **metrics):
        if self.current == self.target:
            self.n += steps
            if self.n >= self.after:
                raise Crash


@pytest.fixture
def crash_at():
    """(CrashAt, Crash): stop a training run mid-phase, as a crash would."""
    return CrashAt, Crash
