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
PRECISIONS = ("auto", "bf16", "fp32")  # of the recalibration pass; see :func:`recalibration_dtype`


def native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AMX or AVX512-BF16); elsewhere bf16 is emulated and slower than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private, so probed, never required
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def recalibration_dtype(precision: str, device: torch.device | str = "cpu") -> torch.dtype:
    """The dtype the recalibration pass computes in: ``"auto"`` is bf16 on a CPU with native bf16, else fp32.

    Why: the pass is a full forward over the calibration images and most of a materialisation;
    in bf16 its convolutions run on the bf16 units (AMX), 2-2.7x faster on 1 thread at the
    larger sizes, while the statistics still accumulate in fp32 (docs/BENCHMARKS.md, issue 14).
    ``"fp32"`` computes exactly what every release before did.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"recalibration precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if torch.device(device).type == "cpu" and native_bf16() else torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float32


@torch.no_grad()
def calibration_images(train_images: torch.Tensor, seed: int, n: int) -> torch.Tensor:
    """The images a manifold stores for BN recalibration: the first ``n`` of one seeded permutation of
    the training split, so a run that stores more holds the same first images (and re-scores exactly)."""
    gen = torch.Generator().manual_seed(seed + 7)
    return train_images[torch.randperm(len(train_images), generator=gen)[:n]].clone()


def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 256, precision: str = "fp32") -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``images`` (already normalised).

    Uses the plain average of the batches' statistics (momentum=None), not an exponential one, so
    the result does not depend on batch order. Materialisation passes its 4096 images in 16 equal
    batches: the means are the images' exact means, the variances the batches' average variance,
    short of the whole set's by the spread of the batch means (small for random batches). Networks
    with a layer of 64 or more channels run the pass in channels-last layout, which their CPU
    convolutions take 1.2-1.45x faster; narrower ones lose more to the layout change than they gain
    (docs/BENCHMARKS.md). This
    pass is most of a materialisation; ``precision`` (see :func:`recalibration_dtype`) runs its
    convolutions in bf16 under autocast (BatchNorm and its statistics stay fp32). The model is
    handed back in the default layout, with fp32 statistics.
    """
    dtype = recalibration_dtype(precision, images.device)
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
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            forward = getattr(model, "forward_inplace", model)  # same statistics, fewer element-wise passes
            for i in range(0, images.shape[0], batch_size):
                forward(images[i : i + batch_size])
    finally:
        if wide:
            model.to(memory_format=torch.contiguous_format)
    return model.eval()
