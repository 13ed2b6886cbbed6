"""Exact parameter and multiply-accumulate counts, read off a real module with hooks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int  # multiply-accumulates for one sample

    @property
    def mflops(self) -> float:
        """Millions of floating-point operations (2 per MAC) for one sample."""
        return 2 * self.macs / 1e6


def count_cost(model: nn.Module, input_shape: tuple[int, int, int]) -> Cost:
    """Count parameters and MACs of ``model`` for one input of shape (C, H, W)."""
    macs = 0

    def conv_hook(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1]
        macs += out[0].numel() * (module.in_channels // module.groups) * k

    def linear_hook(module: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        macs += out[0].numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Cost(params=sum(p.numel() for p in model.parameters()), macs=macs)
