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
    from metaforge.deploy.materialise import materialise

    r = materialise(manifold, config, out, samples=samples, evaluate=evaluate)
    acc = f", test top-1 {r.test_top1:.4f}" if r.test_top1 is not None else ""
    typer.echo(f"wrote {r.path}: '{r.config}' ({'seen' if r.seen else 'unseen'}), {r.params:,} params, {r.mflops:.2f} MFLOPs{acc}")
