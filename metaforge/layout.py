"""Where every weight of a ResNet config sits: its layers and the channel axes they share.

A *channel group* is one axis of channels that several tensors touch together: the residual
stream of a stage (written by the stem or every block, read by the next convs and the classifier)
or the inner channels of one block. Permutation smoothing reorders a group as a whole, and the
INR gives every group one learnable code grid, so tensors that share an axis agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from metaforge.arch import blocks
from metaforge.space import ArchConfig

IMAGE = "image"
LOGITS = "logits"


@dataclass(frozen=True)
class Layer:
    """One generated layer: a conv unit (``kernel`` 3 or 1) or the classifier (``kernel`` 0)."""

    path: str  # module path: "stem", "stages.1.0.conv1", "fc"
    kind: str  # "stem" | "conv1" | "conv2" | "shortcut" | "fc"
    stage: int
    out_group: str
    in_group: str
    kernel: int

    @property
    def weight_name(self) -> str:
        return "fc.weight" if self.kind == "fc" else f"{self.path}.conv.weight"

    def vector_names(self, bn: bool) -> tuple[str, ...]:
        """Per-output-channel tensors: a bias, or BatchNorm's scale and shift."""
        if self.kind == "fc":
            return ("fc.bias",)
        return (f"{self.path}.bn.weight", f"{self.path}.bn.bias") if bn else (f"{self.path}.conv.bias",)


def stream(stage: int) -> str:
    return f"stream{stage}"


def inner(stage: int, block: int) -> str:
    return f"inner{stage}.{block}"


def layers(config: ArchConfig) -> list[Layer]:
    """Every conv and linear layer of ``config`` in forward order (the blocks of :func:`metaforge.arch.blocks`).

    The config alone decides them: the image's channels are a width (:func:`group_width`), not a layer."""
    out = [Layer("stem", "stem", 0, stream(0), IMAGE, 3)]
    cin_group = stream(0)
    for b in blocks(config):
        s, p = b.stage, f"stages.{b.stage}.{b.index}"
        out.append(Layer(f"{p}.conv1", "conv1", s, inner(s, b.index), cin_group, 3))
        out.append(Layer(f"{p}.conv2", "conv2", s, stream(s), inner(s, b.index), 3))
        if b.projection:
            out.append(Layer(f"{p}.shortcut", "shortcut", s, stream(s), cin_group, 1))
        cin_group = stream(s)
    out.append(Layer("fc", "fc", len(config.widths) - 1, LOGITS, cin_group, 0))
    return out


def tensor_names(config: ArchConfig, bn: bool) -> list[str]:
    """Names of every tensor the INR generates for ``config``."""
    return [n for layer in layers(config) for n in (layer.weight_name, *layer.vector_names(bn))]


def group_width(group: str, config: ArchConfig, in_channels: int, num_classes: int) -> int:
    """Number of channels of a group in ``config``."""
    if group == IMAGE:
        return in_channels
    if group == LOGITS:
        return num_classes
    stage = int(group.removeprefix("stream").removeprefix("inner").split(".")[0])
    return config.widths[stage]


def is_fixed(group: str) -> bool:
    """Input image channels and output logits never change width and are never permuted."""
    return group in (IMAGE, LOGITS)
