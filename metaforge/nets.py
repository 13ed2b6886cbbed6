"""The architecture family: a CIFAR-style ResNet (stem, stages of basic blocks, pool, linear).

One module serves three roles, chosen by ``norm``:
- ``"batch"``: conv + BatchNorm with running statistics (the base network, calibrated nets);
- ``"batch-stateless"``: BatchNorm that always uses batch statistics (manifold training, where
  every step has a different width and running statistics would mix sizes);
- ``"none"``: conv with bias and no normalisation (materialised, exported networks).
The network holds only the layers its config has: a narrow, shallow config is really small.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from metaforge.arch import blocks, needs_projection
from metaforge.space import ArchConfig

Norm = Literal["none", "batch", "batch-stateless"]


class ConvUnit(nn.Module):
    """A conv followed by optional BatchNorm; no activation (the caller decides)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: Norm) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=norm == "none")
        if norm != "none":
            self.bn = nn.BatchNorm2d(cout, track_running_stats=norm == "batch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if hasattr(self, "bn") else x


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut (a strided 1x1 conv where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: Norm) -> None:
        super().__init__()
        self.conv1 = ConvUnit(cin, cout, 3, stride, norm)
        self.conv2 = ConvUnit(cout, cout, 3, 1, norm)
        self.shortcut = ConvUnit(cin, cout, 1, stride, norm) if needs_projection(cin, cout, stride) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(out + (self.shortcut(x) if self.shortcut is not None else x))

    def forward_inplace(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` with in-place ReLU and residual add (no autograd): see :meth:`ResNet.forward_inplace`."""
        out = self.conv2(torch.relu_(self.conv1(x)))
        out += self.shortcut(x) if self.shortcut is not None else x
        return torch.relu_(out)


class ResNet(nn.Module):
    """CIFAR-style ResNet built from an :class:`ArchConfig`."""

    def __init__(self, config: ArchConfig, in_channels: int, num_classes: int, norm: Norm = "none") -> None:
        super().__init__()
        self.config = config
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.norm = norm
        self.stem = ConvUnit(in_channels, config.widths[0], 3, 1, norm)
        stages: list[list[BasicBlock]] = [[] for _ in config.widths]
        for b in blocks(config):
            stages[b.stage].append(BasicBlock(b.cin, b.cout, b.stride, norm))
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in stages)
        self.fc = nn.Linear(config.widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    @torch.no_grad()
    def forward_inplace(self, x: torch.Tensor) -> torch.Tensor:
        """The same values as ``forward``, with its ReLUs and residual adds in place.

        Why: BN recalibration runs one no-grad pass over the calibration images, and in bf16 its
        element-wise ops cost more than its convolutions; writing in place saves 15-25% of that
        pass at the larger sizes (docs/BENCHMARKS.md, issue 14). Never for training: no autograd.
        """
        x = torch.relu_(self.stem(x))
        for stage in self.stages:
            for block in stage:
                x = block.forward_inplace(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def describe(self) -> dict:
        """Enough to rebuild the module: used by saved models and checkpoints."""
        return {
            "family": "cifar-resnet",
            "config": str(self.config),
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "norm": self.norm,
        }

    @classmethod
    def from_description(cls, d: dict) -> "ResNet":
        return cls(ArchConfig.parse(d["config"]), int(d["in_channels"]), int(d["num_classes"]), d.get("norm", "none"))
