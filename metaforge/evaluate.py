"""Accuracy of a network on a split, and BatchNorm statistics recalibration."""

from __future__ import annotations

import torch
from torch import nn

from metaforge.data import Normalization, Split, batches


@torch.no_grad()
def predict(model: nn.Module, split: Split, norm: Normalization, batch_size: int = 512, device: str | torch.device = "cpu") -> torch.Tensor:
    """Logits of ``model`` for every sample of ``split`` (in order), on the CPU."""
    model.eval()
    outs = [model(x).float().cpu() for x, _ in batches(split, norm, batch_size, device=device)]
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(model: nn.Module, split: Split, norm: Normalization, batch_size: int = 512, device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in [0, 1]."""
    logits = predict(model, split, norm, batch_size, device)
    return float((logits.argmax(1) == split.labels).float().mean())


CHANNELS_LAST_FROM = 64  # widest BatchNorm layer from which recalibration runs channels-last (measured)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``images`` (already normalised).

    Uses the plain average of the batches' statistics (momentum=None), not an exponential one, so
    the result does not depend on batch order; materialisation passes its 256 images as one batch,
    which makes them the exact statistics of the images. Networks with a layer of 64 or more
    channels run the pass in channels-last layout, which their CPU convolutions take 1.2-1.45x
    faster; narrower ones lose more to the layout change than they gain (docs/BENCHMARKS.md). This
    pass is most of a materialisation. The model is handed back in the default layout.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    wide = max((bn.num_features for bn in bns), default=0) >= CHANNELS_LAST_FROM
    if wide:
        model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    try:
        for i in range(0, images.shape[0], batch_size):
            model(images[i : i + batch_size])
    finally:
        if wide:
            model.to(memory_format=torch.contiguous_format)
    return model.eval()
