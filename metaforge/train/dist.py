"""Distributed training under torchrun: who this process is, and the few collectives training needs.

torchrun starts one process per device and tells each its place through the environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/MASTER_PORT). Every rank runs the same deterministic
program on its share of each global batch; after each backward pass the gradients are averaged
in one flat all-reduce, so every rank takes the same optimiser step and the model stays
identical everywhere without broadcasting weights. Rank 0 alone writes files and reports.

Gradients are averaged by hand rather than through ``DistributedDataParallel``: the manifold's
trainable module (the INR) is never called as a module - it generates tensors that
``torch.func.functional_call`` runs through a different network every step, and which of its
parameters receive a gradient changes with the sampled size. One code path serves base and
manifold training alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from torch import nn

from metaforge.errors import ConfigError

COLLECTIVE_TIMEOUT = timedelta(hours=2)  # see process_group


@dataclass(frozen=True)
class Dist:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, outputs and progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world


def from_env(env: Mapping[str, str] = os.environ) -> Dist | None:
    """The place torchrun gave this process, or None when it was not started by torchrun."""
    if "RANK" not in env and "WORLD_SIZE" not in env:
        return None
    try:
        d = Dist(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError):
        raise ConfigError("RANK and WORLD_SIZE must both be set to integers (torchrun sets them): "
                          "start distributed training with `torchrun ... -m metaforge train`") from None
    if d.world < 1 or not 0 <= d.rank < d.world:
        raise ConfigError(f"RANK {d.rank} is outside WORLD_SIZE {d.world}: start with torchrun, which sets both")
    return d


def current() -> Dist:
    """The place of this process in the initialised process group (rank 0 of 1 if there is none)."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return Dist()
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def backend_for(device_name: str) -> str:
    """NCCL when training runs on CUDA devices, gloo on the CPU."""
    cuda = device_name != "cpu" and torch.cuda.is_available()
    return "nccl" if cuda else "gloo"


@contextmanager
def process_group(device_name: str) -> Iterator[Dist]:
    """Join torchrun's process group for the duration; outside torchrun (or with one process), do nothing."""
    place = from_env()
    if place is None or place.world == 1 or torch_dist.is_initialized():
        yield current()
        return
    backend = backend_for(device_name)
    if backend == "nccl":
        torch.cuda.set_device(place.local_rank)
    # Rank 0 alone evaluates (per-epoch validation, the final accuracy table) while the others wait
    # in a barrier or the next all-reduce: the default 10-minute collective timeout could end a
    # large run just before rank 0 writes the manifold.
    torch_dist.init_process_group(backend, rank=place.rank, world_size=place.world, timeout=COLLECTIVE_TIMEOUT)
    try:
        yield current()
    finally:
        torch_dist.destroy_process_group()


def device_for(device: torch.device, d: Dist) -> torch.device:
    """Each rank its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if d.enabled and device.type == "cuda" and device.index is None:
        return torch.device("cuda", d.local_rank)
    return device


def all_reduce_grads(params: Iterable[nn.Parameter], d: Dist) -> None:
    """Average every parameter's gradient over the ranks, in one flat all-reduce.

    A parameter without a gradient on every rank keeps ``grad=None`` (so AdamW skips it exactly as
    a single process would); one with a gradient on some ranks gets the average with zeros.
    """
    if not d.enabled:
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    ref = params[0]
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=ref.device)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params] + [present])
    torch_dist.all_reduce(flat)
    counts = flat[-len(params):]
    for p, chunk, count in zip(params, flat[:-len(params)].split([p.numel() for p in params]), counts.tolist()):
        p.grad = None if count == 0 else (chunk / d.world).view_as(p).to(p.dtype)


@torch.no_grad()
def broadcast_module(module: nn.Module, d: Dist) -> None:
    """Make every rank's parameters and buffers rank 0's (insurance against any init that differs)."""
    if not d.enabled:
        return
    for t in module.state_dict().values():
        torch_dist.broadcast(t, src=0)


def same_everywhere(values: list[float], d: Dist, device: torch.device) -> bool:
    """True if every rank passed the same ``values`` (e.g. the position a resume starts from)."""
    if not d.enabled:
        return True
    t = torch.tensor(values, dtype=torch.float64, device=device)
    lo, hi = t.clone(), t.clone()
    torch_dist.all_reduce(lo, op=torch_dist.ReduceOp.MIN)
    torch_dist.all_reduce(hi, op=torch_dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def barrier(d: Dist) -> None:
    """Wait until every rank arrives (e.g. while rank 0 writes a file the others will read)."""
    if d.enabled:
        torch_dist.barrier()
