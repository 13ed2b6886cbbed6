"""BatchNorm with the statistics of the whole global batch when the batch is split across ranks.

Both training phases normalise with batch statistics (the base network while it trains, every
generated network of the manifold always). Split a batch of B over N ranks and each rank would
normalise by the statistics of its B/N samples: a different, noisier model than one process
trains. Synchronising the per-channel sums makes the forward and (through the differentiable
all-reduce) the backward pass those of one process with the global batch, so the result does not
depend on the number of processes. ``torch.nn.SyncBatchNorm`` would do this on GPUs only; this
one runs on any backend (gloo on CPU included) and keeps the parameter names of
``nn.BatchNorm2d``, so checkpoints and ``functional_call`` are unchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
from torch import nn


def _distributed() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum over ranks is the sum over ranks of the gradients."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        t = t.clone()
        torch_dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone()
        torch_dist.all_reduce(grad)
        return grad


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of the global batch over all ranks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _distributed()):
            return super().forward(x)
        c = x.shape[1]
        xf = x.float()
        count = torch.full((1,), x.numel() // c, dtype=torch.float32, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)  # unbiased, as BatchNorm
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every ``nn.BatchNorm2d`` inside ``module`` for :class:`SyncedBatchNorm2d`, in place.

    Parameters and buffers are moved over (the same tensors), so an optimiser made afterwards,
    a state dict, or ``functional_call`` sees the same names. Converting twice changes nothing.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            synced = SyncedBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            for key, value in (*child._parameters.items(), *child._buffers.items()):
                setattr(synced, key, value)
            synced.train(child.training)
            setattr(module, name, synced)
        else:
            sync_batchnorm(child)
    return module
