"""Epoch/step bookkeeping shared by base and manifold training: schedules, resume, saving."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from metaforge.data import Dataset, batches, num_batches


@dataclass
class Position:
    """Where a phase is: finished epochs and steps of the current epoch (for resume)."""

    epoch: int = 0
    step: int = 0  # steps finished within ``epoch``

    def global_step(self, steps_per_epoch: int) -> int:
        return self.epoch * steps_per_epoch + self.step


def cosine_lr(step: int, total: int, base: float, warmup: int = 0) -> float:
    """Linear warm-up then cosine decay to zero."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate to ``lr`` times the group's own ``lr_scale`` (1 when absent)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def epoch_batches(ds: Dataset, batch_size: int, seed: int, epoch: int, skip: int, device,
                  shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of one epoch, reproducible from (seed, epoch); the first ``skip`` are dropped.

    ``shard=(rank, world)``: this rank's part of every global batch of ``batch_size``.
    """
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    it = batches(ds.train, ds.norm, batch_size, shuffle=True, augment=ds.augment, generator=gen, device=device,
                 drop_last=True, shard=shard)
    for i, batch in enumerate(it):
        if i >= skip:
            yield batch


def steps_per_epoch(ds: Dataset, batch_size: int) -> int:
    return max(1, num_batches(len(ds.train), batch_size, drop_last=True))


def run_phase(
    ds: Dataset,
    batch_size: int,
    seed: int,
    epochs: int,
    pos: Position,
    device,
    step: Callable[[int, torch.Tensor, torch.Tensor], None],
    save: Callable[[Position], None],
    save_every: int,
    end_epoch: Callable[[int], None] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> None:
    """Run ``step(global_step, x, y)`` over the remaining epochs from ``pos``; save as it goes.

    ``save`` runs every ``save_every`` steps and after every epoch (the last one included), on
    every rank: the callback decides who writes.
    """
    spe = steps_per_epoch(ds, batch_size)
    while pos.epoch < epochs:
        for x, y in epoch_batches(ds, batch_size, seed, pos.epoch, pos.step, device, shard):
            step(pos.global_step(spe), x, y)
            pos.step += 1
            if pos.global_step(spe) % save_every == 0 and pos.step < spe:
                save(pos)
        pos.epoch, pos.step = pos.epoch + 1, 0
        if end_epoch is not None:
            end_epoch(pos.epoch)
        save(pos)
