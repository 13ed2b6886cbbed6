"""The layers of a config, computed from its shape alone: the unit of every cost model.

A network is a list of :class:`Layer` s (stem, basic blocks, head), each with exact parameter and
MAC counts and the activations it keeps alive; ``tests/test_fit.py`` checks the counts against
:func:`metaforge.cost.count_cost` on the real module.
"""

from __future__ import annotations

from dataclasses import dataclass

from metaforge.arch import blocks, needs_projection
from metaforge.space import ArchConfig, ArchSpace


@dataclass(frozen=True)
class Layer:
    """One unit a latency table is keyed by: kind ("stem", "block", "head") and its shape."""

    kind: str
    cin: int
    cout: int
    hw: int  # input height = width
    stride: int = 1

    @property
    def hw_out(self) -> int:
        return 1 if self.kind == "head" else -(-self.hw // self.stride)

    @property
    def projection(self) -> bool:
        return self.kind == "block" and needs_projection(self.cin, self.cout, self.stride)

    @property
    def convs(self) -> list[tuple[int, int, int, int]]:
        """(cin, cout, kernel, output hw) of every conv / linear in the layer."""
        o = self.hw_out
        if self.kind == "stem":
            return [(self.cin, self.cout, 3, o)]
        if self.kind == "head":
            return [(self.cin, self.cout, 1, 1)]
        convs = [(self.cin, self.cout, 3, o), (self.cout, self.cout, 3, o)]
        return convs + ([(self.cin, self.cout, 1, o)] if self.projection else [])

    @property
    def params(self) -> int:
        return sum(ci * co * k * k + co for ci, co, k, _ in self.convs)

    @property
    def macs(self) -> int:
        return sum(o * o * co * ci * k * k for ci, co, k, o in self.convs)

    @property
    def ops(self) -> int:
        """Operators a runtime runs for the layer before fusion (convs, relus, add, pool)."""
        return {"stem": 2, "head": 3}.get(self.kind, 5 + int(self.projection))

    @property
    def in_elems(self) -> int:
        return self.cin * self.hw * self.hw

    @property
    def out_elems(self) -> int:
        return self.cout * self.hw_out * self.hw_out

    @property
    def live_elems(self) -> int:
        """Elements alive at once inside the layer for one sample (input kept for the shortcut)."""
        if self.kind != "block":
            return self.in_elems + self.out_elems
        return self.in_elems + (3 if self.projection else 2) * self.out_elems


def layers(config: ArchConfig, space: ArchSpace) -> list[Layer]:
    """Stem, every basic block of :func:`metaforge.arch.blocks` in order, head."""
    hw = space.image_size
    out = [Layer("stem", space.in_channels, config.widths[0], hw)]
    for b in blocks(config):
        out.append(Layer("block", b.cin, b.cout, hw, b.stride))
        hw = out[-1].hw_out
    out.append(Layer("head", config.widths[-1], space.num_classes, hw))
    return out


def params(ls: list[Layer]) -> int:
    return sum(layer.params for layer in ls)


def macs(ls: list[Layer]) -> int:
    return sum(layer.macs for layer in ls)


def peak_activation_elems(ls: list[Layer]) -> int:
    """Peak elements alive at once for one sample, over a sequential run of the layers."""
    return max(layer.live_elems for layer in ls)
