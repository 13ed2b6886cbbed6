"""Fold BatchNorm into the preceding conv: the exported, plain network has no normalisation."""

from __future__ import annotations

import torch

from metaforge.nets import ConvUnit, ResNet


@torch.no_grad()
def fold_batchnorm(model: ResNet) -> ResNet:
    """Return a ``norm="none"`` copy of a ``norm="batch"`` model computing the same eval function.

    W' = W * g / s and b' = beta - mu * g / s with s = sqrt(var + eps).
    """
    if model.norm != "batch":
        raise ValueError(f"fold_batchnorm needs a model with norm='batch', got norm={model.norm!r}")
    plain = ResNet(model.config, model.in_channels, model.num_classes, norm="none").to(
        next(model.parameters()).device
    )
    source = dict(model.named_modules())
    for name, unit in plain.named_modules():
        if not isinstance(unit, ConvUnit):
            continue
        src = source[name]
        bn = src.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        unit.conv.weight.copy_(src.conv.weight * scale.view(-1, 1, 1, 1))
        unit.conv.bias.copy_(bn.bias - bn.running_mean * scale)
    plain.fc.load_state_dict(model.fc.state_dict())
    return plain.eval()
