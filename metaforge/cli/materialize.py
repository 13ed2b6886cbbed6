"""``metaforge materialize``: one config of a manifold -> a plain PyTorch model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from metaforge.cli import app


@app.command()
def materialize(
    manifold: Annotated[Path, typer.Argument(help="A manifold file written by `metaforge train`.")],
    config: Annotated[str, typer.Option(help="Size to build, e.g. 'w=8,16,32 d=2,2,2' (see `metaforge info` for the ranges).")],
    out: Annotated[Path, typer.Option(help="Folder to write model.safetensors, model.json and model.pt2 into.")],
    samples: Annotated[Optional[int], typer.Option(min=1, help="K stratified samples to average (default: the manifold's K below its seen widths, 1 within).")] = None,
    evaluate: Annotated[bool, typer.Option(help="Also report test accuracy on the manifold's dataset.")] = False,
) -> None:
    """Build a plain network (conv + bias, no BatchNorm) of any size in the manifold's space.

    The folder loads with plain PyTorch: torch.export.load('OUT/model.pt2').module().
    """
    from metaforge.io import ensure_writable

    ensure_writable(out, folder=True)  # before torch is imported: a bad --out is answered at once
    import torch

    from metaforge.checkpoint import load_manifold
    from metaforge.cost import count_cost
    from metaforge.model_io import save_model_folder
    from metaforge.space import ArchConfig

    m = load_manifold(manifold)
    cfg = m.space.check(ArchConfig.parse(config))
    net = m.materialize(cfg, samples)
    sp = m.space
    shape = (sp.in_channels, sp.image_size, sp.image_size)
    cost = count_cost(net, shape)
    extra = {
        "config": str(cfg), "dataset": m.info.dataset, "classes": list(m.info.classes),
        "normalization": m.info.normalization.to_dict(), "input_shape": list(shape),
        "seen": m.is_seen(cfg), "params": cost.params, "mflops": round(cost.mflops, 3),
    }
    if evaluate:
        from metaforge.data import load_dataset
        from metaforge.evaluate import accuracy

        ds = load_dataset(m.info.dataset, m.info.train_config.get("data_dir"), seed=m.info.train_config.get("seed", 0))
        extra["test_top1"] = round(accuracy(net, ds.test, ds.norm), 4)
    save_model_folder(net, out, extra, torch.zeros((1, *shape)))
    acc = f", test top-1 {extra['test_top1']:.4f}" if "test_top1" in extra else ""
    typer.echo(f"wrote {out}: '{cfg}' ({'seen' if extra['seen'] else 'unseen'}), {cost.params:,} params, {cost.mflops:.2f} MFLOPs{acc}")
