"""The ``single`` recipe's manifold phase: one random seen size per step, trained through the INR.

The recipe the project started with, kept as an option beside ``progressive`` (docs/METHOD.md):
the INR learns every size at once from its initialisation, optionally distilling the base
network's predictions. Why a module of its own: ``run.py`` only sequences the phases.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from metaforge.data import Dataset
from metaforge.inr import Jitter, WeightINR
from metaforge.manifold import Manifold
from metaforge.progress import Progress
from metaforge.space import ArchConfig
from metaforge.train.config import TrainConfig
from metaforge.train.dist import Dist, all_reduce_grads
from metaforge.train.divergence import kl, teacher_probs
from metaforge.train.init import recon_loss, tensor_variances
from metaforge.train.loop import cosine_lr, run_phase, set_lr, steps_per_epoch
from metaforge.train.phase import ManifoldPhase
from metaforge.train.precision import Precision
from metaforge.train.sampling import sample_config, varying_stages
from metaforge.train.syncbn import sync_batchnorm


def param_groups(inr: WeightINR, cfg: TrainConfig) -> list[dict]:
    """The weight grids at ``cfg.lr``; the MLP, codes and embeddings at ``cfg.mlp_lr``."""
    grids = inr.grid_parameters()
    in_grids = {id(p) for p in grids}
    mlp_lr = cfg.mlp_lr if cfg.mlp_lr is not None else cfg.lr
    groups = [{"params": [p for p in inr.parameters() if id(p) not in in_grids], "lr_scale": mlp_lr / cfg.lr}]
    if grids:
        groups.append({"params": grids, "lr_scale": 1.0})
    return groups


def train_manifold(cfg: TrainConfig, ds: Dataset, manifold: Manifold, ema: Manifold, truth: dict[str, torch.Tensor], device, run_dir: Path,
                   state: dict | None, progress: Progress, teacher: nn.Module | None = None, d: Dist = Dist()) -> None:
    """The ``single`` recipe: train the INR through the generated networks, one random seen config per step.

    With ``cfg.distill`` > 0, the task loss mixes cross-entropy with the KL divergence to the base
    network's predictions on the same (augmented) batch: every size learns from the full one.
    """
    space, inr = manifold.space, manifold.inr
    widths, depths = manifold.info.seen_widths, manifold.info.seen_depths
    opt = torch.optim.AdamW(param_groups(inr, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    prec = Precision(cfg.precision, torch.device(device))
    synced = d.enabled and cfg.sync_bn and inr.bn
    phase = ManifoldPhase(cfg, ds, manifold, ema, device, run_dir, progress, d)
    pos = phase.resume(state, opt, prec)
    spe = steps_per_epoch(ds, cfg.batch_size)
    total = cfg.epochs * spe
    # An epoch (at most 5% of the phase), but at least 20 steps (half the phase if that is shorter):
    # at lr 3e-2, 6 warm-up steps wrecked a short tiny run that 13 or more did not (docs/METHOD.md)
    warmup = max(min(spe, total // 20), min(20, total // 2))
    var = tensor_variances(truth, space, inr.bn)
    loss_fn = nn.CrossEntropyLoss()
    smallest_seen = ArchConfig(tuple(w[0] for w in widths), tuple(d[0] for d in depths))
    progress.phase("manifold", total, pos.global_step(spe))

    def step(t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        inr.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + t)
        full = t % cfg.full_every == 0
        bottom = cfg.sandwich and t % cfg.full_every == cfg.full_every // 2
        n_vary = varying_stages(t, total, space.num_stages, cfg.incremental, cfg.incremental_frac)
        config = space.full if full else sample_config(space, widths, depths, n_vary, gen, smallest=bottom)
        set_lr(opt, cosine_lr(t, total, cfg.lr, warmup=warmup))
        net = manifold.training_net(config)
        if synced:
            sync_batchnorm(net)
        with prec.autocast():
            params = inr.generate(config, Jitter(gen))
            logits = functional_call(net, params, (x,))
            ce = loss_fn(logits, y)
            task = ce
            if teacher is not None and cfg.distill > 0:
                with torch.no_grad():
                    soft = teacher_probs(teacher(x))
                kd = kl(logits, soft)
                task = (1 - cfg.distill) * ce + cfg.distill * kd
        loss = task.float() + cfg.norm_reg * sum(params[n].float().norm() for n in params if n.endswith("weight") and params[n].dim() > 1)
        if full and cfg.recon_weight > 0:
            loss = loss + cfg.recon_weight * recon_loss({n: p.float() for n, p in params.items()}, truth, var)
        opt.zero_grad(set_to_none=True)
        prec.backward(loss)
        all_reduce_grads(inr.parameters(), d)
        prec.unscale(opt)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_value_(inr.parameters(), cfg.grad_clip)
        prec.step(opt)
        decay = min(cfg.ema, (1 + t) / (10 + t))  # short warm-up so early EMA is not the init
        with torch.no_grad():
            for pe, p in zip(ema.inr.parameters(), inr.parameters()):
                pe.lerp_(p, 1 - decay)
        progress.advance(1, loss=ce.item(), acc=(logits.argmax(1) == y).float().mean().item())

    run_phase(ds, cfg.batch_size, cfg.seed, cfg.epochs, pos, device, step, lambda p: phase.save(p, opt, prec),
              cfg.save_every, phase.end_epoch(smallest_seen), d.shard)
