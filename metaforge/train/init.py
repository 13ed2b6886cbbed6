"""Phase 2 of training: the ground truth (BN treated, channels smoothed) and an INR that reproduces it."""

from __future__ import annotations

import copy

import torch

from metaforge.fold import fold_batchnorm
from metaforge.inr import WeightINR
from metaforge.layout import tensor_names
from metaforge.nets import ResNet
from metaforge.permute import channel_permutations, permute_channels
from metaforge.progress import Progress
from metaforge.space import ArchSpace
from metaforge.train.config import TrainConfig
from metaforge.train.loop import cosine_lr, set_lr


def ground_truth(cfg: TrainConfig, base: ResNet) -> dict[str, torch.Tensor]:
    """The tensors the INR starts from: BN folded (or kept, for recalibration), channels reordered."""
    truth = fold_batchnorm(base) if cfg.bn_mode == "fold" else copy.deepcopy(base).eval()
    if cfg.permute:
        truth = permute_channels(truth, channel_permutations(truth, cfg.channel_order))
    return {k: v.detach().clone() for k, v in truth.state_dict().items()}


def tensor_variances(truth: dict[str, torch.Tensor], space: ArchSpace, bn: bool) -> dict[str, torch.Tensor]:
    """Per generated tensor, the variance of its ground truth (the unit of the reconstruction loss)."""
    return {n: truth[n].var().clamp_min(1e-8) for n in tensor_names(space.full, bn)}


def recon_loss(params: dict[str, torch.Tensor], truth: dict[str, torch.Tensor], var: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over tensors of the squared error relative to the tensor's variance."""
    return sum(((params[n] - truth[n]) ** 2).mean() / var[n] for n in var) / len(var)


def init_inr(cfg: TrainConfig, space: ArchSpace, truth: dict[str, torch.Tensor], device, progress: Progress) -> tuple[WeightINR, float]:
    """An INR that reproduces the full-size ground truth (codes from PCA, then regression)."""
    torch.manual_seed(cfg.seed)
    inr = WeightINR(space, cfg.inr, bn=cfg.bn_mode == "recalibrate").to(device)
    inr.fit_scales(truth)
    inr.init_codes(truth)
    inr.init_grids(truth)
    var = tensor_variances(truth, space, inr.bn)
    opt = torch.optim.Adam(inr.parameters(), lr=cfg.recon_lr)
    steps = cfg.recon_steps_resolved
    progress.phase("INR initialisation", steps)
    with torch.no_grad():
        loss = recon_loss(inr.generate(space.full), truth, var)
    for t in range(steps):
        set_lr(opt, cosine_lr(t, steps, cfg.recon_lr, warmup=min(50, steps // 10)))
        loss = recon_loss(inr.generate(space.full), truth, var)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        progress.advance(1, recon=loss.item())
    return inr, loss.item()
