"""``materialise``: one config of a manifold -> a plain PyTorch model folder (``metaforge materialize``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metaforge.io import ensure_writable
from metaforge.space import ArchConfig


@dataclass(frozen=True)
class Materialised:
    path: Path
    config: ArchConfig
    seen: bool  # every stage's width and depth was sampled in training
    params: int
    mflops: float
    test_top1: float | None  # with ``evaluate``


def materialise(manifold: str | Path, config: str, out: str | Path, *, samples: int | None = None,
                evaluate: bool = False) -> Materialised:
    """Build ``config`` (conv + bias, no BatchNorm) and write model.safetensors, model.json and model.pt2 to ``out``."""
    from metaforge.checkpoint import read_space

    ensure_writable(out, folder=True)  # before torch is imported: a bad --out, manifold or config is answered at once
    cfg = read_space(manifold).check(ArchConfig.parse(config))
    import torch

    from metaforge.checkpoint import load_manifold
    from metaforge.cost import count_cost
    from metaforge.model_io import save_model_folder

    m = load_manifold(manifold)
    net = m.materialize(cfg, samples)
    shape = m.space.input_shape
    cost = count_cost(net, shape)
    top1 = None
    if evaluate:
        from metaforge.evaluate import accuracy

        ds = m.dataset()
        top1 = round(accuracy(net, ds.test, ds.norm), 4)
    extra = {
        "config": str(cfg), "dataset": m.info.dataset, "classes": list(m.info.classes),
        "normalization": m.info.normalization.to_dict(), "input_shape": list(shape),
        "seen": m.is_seen(cfg), "params": cost.params, "mflops": round(cost.mflops, 3),
        **({"test_top1": top1} if top1 is not None else {}),
    }
    save_model_folder(net, out, extra, torch.zeros((1, *shape)))
    return Materialised(Path(out), cfg, extra["seen"], cost.params, cost.mflops, top1)
