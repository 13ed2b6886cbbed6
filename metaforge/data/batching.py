"""Batches of a split: shuffled, augmented and normalised as whole-batch tensor ops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from metaforge.errors import DataError

if TYPE_CHECKING:  # the dataclasses live in metaforge.data, which imports this module
    from metaforge.data import Normalization, Split

AUGMENTS: tuple[str, ...] = ("none", "shift", "shift-flip")
_MAX_SHIFT = {"none": 0, "shift": 2, "shift-flip": 4}


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` samples."""
    if batch_size < 1 or n < 0:
        raise DataError(f"batch size {batch_size} for {n} samples is invalid: use a batch size of at least 1")
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(split: Split, norm: Normalization, batch_size: int, *, shuffle: bool = False,
            augment: str = "none", generator: torch.Generator | None = None,
            device: str | torch.device = "cpu", drop_last: bool = False,
            shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (normalised float32 images, int64 labels) on ``device``, one epoch.

    Shuffling and augmentation draw only from ``generator`` (torch's global RNG if it is None),
    so a seeded generator gives the same batches on every run. ``shard=(rank, world)`` yields
    only part ``rank`` of ``world`` equal parts of each batch: the random draws are still made
    for the whole batch, so the parts of all ranks together are exactly the unsharded batch
    (distributed training sees the same data and augmentation as one process). Arguments are
    checked now, not at the first batch.
    """
    if augment not in AUGMENTS:
        raise DataError(f"unknown augmentation {augment!r}: choose one of {', '.join(AUGMENTS)}")
    rank, world = shard
    if world < 1 or not 0 <= rank < world:
        raise DataError(f"shard {rank} of {world} is invalid: the rank must lie in [0, world size)")
    if batch_size % world:
        raise DataError(f"batch size {batch_size} does not split into {world} equal parts: use a multiple of {world}")
    count = num_batches(len(split), batch_size, drop_last)
    part = slice(rank * batch_size // world, (rank + 1) * batch_size // world) if world > 1 else slice(None)
    return _batches(split, norm, batch_size, count, shuffle, augment, generator, torch.device(device), part)


def _batches(split: Split, norm: Normalization, batch_size: int, count: int, shuffle: bool, augment: str,
             generator: torch.Generator | None, device: torch.device, part: slice) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(len(split), generator=generator, device=_rng_device(generator)).cpu() if shuffle else None
    for start in range(0, count * batch_size, batch_size):
        n = min(batch_size, len(split) - start)  # the whole batch: random draws are made for all of it
        if order is not None:
            idx = order[start:start + n][part]
        else:  # a slice, not an index tensor: no copy of the images
            idx = slice(start + min(n, part.start or 0), start + min(n, n if part.stop is None else part.stop))
        x = split.images[idx].to(device, non_blocking=True)
        y = split.labels[idx].to(device, non_blocking=True)
        if augment != "none":
            x = _augment(x, augment, generator, n, part)
        yield norm.apply(x), y


def _rng_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _augment(x: torch.Tensor, mode: str, generator: torch.Generator | None, n: int, part: slice) -> torch.Tensor:
    """Shift each image by a random offset in [-p, p]^2 (zero fill) and, for "-flip", mirror half.

    ``x`` is part ``part`` of a batch of ``n``: offsets are drawn for all ``n`` and sliced.
    Done as one gather over a zero-padded batch rather than per image, so it costs about as much
    as a copy of the batch.
    """
    p = _MAX_SHIFT[mode]
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=_rng_device(generator))[:, part].to(x.device)
    padded = x.new_zeros((b, h + 2 * p, w + 2 * p, c))
    padded[:, p:p + h, p:p + w] = x.permute(0, 2, 3, 1)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, :]
    out = padded[torch.arange(b, device=x.device)[:, None, None], rows, cols].permute(0, 3, 1, 2)
    if mode.endswith("-flip"):
        flip = torch.randint(0, 2, (n,), generator=generator, device=_rng_device(generator))[part].to(x.device).bool()
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    # A copy with standard NCHW strides, even for one channel: ``contiguous()`` would keep the NHWC
    # strides of a 1-channel batch (size-1 dims do not count), the convs downstream then run
    # channels-last, and oneDNN's weight gradient of a strided 1x1 conv over 4 channels in that layout
    # corrupts the heap in torch 2.13 (glibc "double free", seen on Fashion-MNIST at width 4).
    return torch.empty(out.shape, dtype=out.dtype, device=out.device).copy_(out)
