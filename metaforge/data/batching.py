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
            device: str | torch.device = "cpu", drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (normalised float32 images, int64 labels) on ``device``, one epoch.

    Shuffling and augmentation draw only from ``generator`` (torch's global RNG if it is None),
    so a seeded generator gives the same batches on every run. Arguments are checked now, not
    at the first batch.
    """
    if augment not in AUGMENTS:
        raise DataError(f"unknown augmentation {augment!r}: choose one of {', '.join(AUGMENTS)}")
    count = num_batches(len(split), batch_size, drop_last)
    return _batches(split, norm, batch_size, count, shuffle, augment, generator, torch.device(device))


def _batches(split: Split, norm: Normalization, batch_size: int, count: int, shuffle: bool, augment: str,
             generator: torch.Generator | None, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(len(split), generator=generator, device=_rng_device(generator)).cpu() if shuffle else None
    for start in range(0, count * batch_size, batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        x = split.images[idx].to(device, non_blocking=True)
        y = split.labels[idx].to(device, non_blocking=True)
        if augment != "none":
            x = _augment(x, augment, generator)
        yield norm.apply(x), y


def _rng_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _augment(x: torch.Tensor, mode: str, generator: torch.Generator | None) -> torch.Tensor:
    """Shift each image by a random offset in [-p, p]^2 (zero fill) and, for "-flip", mirror half.

    Done as one gather over a zero-padded batch rather than per image, so it costs about as much
    as a copy of the batch.
    """
    p = _MAX_SHIFT[mode]
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * p + 1, (2, b), generator=generator, device=_rng_device(generator)).to(x.device)
    padded = x.new_zeros((b, h + 2 * p, w + 2 * p, c))
    padded[:, p:p + h, p:p + w] = x.permute(0, 2, 3, 1)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, :]
    out = padded[torch.arange(b, device=x.device)[:, None, None], rows, cols].permute(0, 3, 1, 2)
    if mode.endswith("-flip"):
        flip = torch.randint(0, 2, (b,), generator=generator, device=_rng_device(generator)).to(x.device).bool()
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out.contiguous()
