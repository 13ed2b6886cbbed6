"""Shared fixtures: one tiny manifold trained on the embedded digits data per test session."""

from __future__ import annotations

import pytest

from metaforge.train.config import TrainConfig

TINY = dict(preset="tiny", base_epochs=10, epochs=20, seed=0, device="cpu")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(manifold path, manifold, training config) of a tiny digits manifold trained once."""
    from metaforge.train.run import train

    out = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    cfg = TrainConfig(**TINY)
    manifold = train(cfg, out)
    return out, manifold, cfg
