"""The one description of the architecture: the basic blocks a config has, in forward order.

The network builder (:class:`metaforge.nets.ResNet`), the INR's weight layout
(:func:`metaforge.layout.layers`) and the cost model's layer shapes (:func:`metaforge.fit.shapes.layers`)
all walk :func:`blocks`, so a change to the family (a stride, a projection rule) is made here once.
Torch-free: the cost model and the CLI read it without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from metaforge.space import ArchConfig


def needs_projection(cin: int, cout: int, stride: int) -> bool:
    """A block's shortcut is a strided 1x1 conv where its shape changes, else the identity."""
    return stride != 1 or cin != cout


def stage_stride(stage: int) -> int:
    """The first stage keeps resolution; every later stage halves it."""
    return 1 if stage == 0 else 2


@dataclass(frozen=True)
class Block:
    """One basic block: where it sits and the channels it maps."""

    stage: int
    index: int  # within its stage
    cin: int
    cout: int
    stride: int

    @property
    def projection(self) -> bool:
        return needs_projection(self.cin, self.cout, self.stride)


def blocks(config: ArchConfig) -> Iterator[Block]:
    """Every basic block of ``config`` after the stem (which writes ``config.widths[0]`` channels)."""
    cin = config.widths[0]
    for s, (width, depth) in enumerate(zip(config.widths, config.depths)):
        for j in range(depth):
            yield Block(s, j, cin, width, stage_stride(s) if j == 0 else 1)
            cin = width
