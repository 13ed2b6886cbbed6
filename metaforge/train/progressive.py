"""The manifold phase of the ``progressive`` recipe: a trained full size teaches every other size.

Each step trains the full size on the labels, then the smallest size and a few random sizes on
the full size's detached predictions (US-Nets' sandwich rule with inplace distillation), and
takes one optimiser step on the summed gradients. It starts from a base network trained alone,
which the INR reproduces exactly (OFA's progressive shrinking in its simplest form).

With ``optimizer="sgd"`` every weight grid is re-parameterised through its learning rate and
weight decay, so that an SGD step on the grid is the base recipe's SGD step on the full-size
weight: the phase continues the base network's own optimisation rather than restarting it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from metaforge.data import Dataset
from metaforge.errors import ConfigError
from metaforge.inr import WeightINR
from metaforge.manifold import Manifold
from metaforge.progress import Progress
from metaforge.train.config import TrainConfig
from metaforge.train.dist import Dist, all_reduce_grads
from metaforge.train.divergence import distill_loss, teacher_probs
from metaforge.train.loop import cosine_lr, run_phase, set_lr, steps_per_epoch
from metaforge.train.phase import ManifoldPhase
from metaforge.train.precision import Precision
from metaforge.train.sampling import bottom_of_step, random_size, sample_bottom
from metaforge.train.syncbn import sync_batchnorm


def grid_preconditioners(inr: WeightINR) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """Per grid, the gradient factor that turns an SGD step on it into one on its tensor.

    A weight is grid × s / C_in (fan-in scaling, C_in of the full size), so a grid step of
    lr·k·∇grid moves the weight by lr·k·(s/C_in)²·∇weight: k = (C_in/s)² makes it the plain step,
    and decay on the grid then decays the weight by the same rate. A BN scale, shift or bias is
    offset + grid × s (one s per column): k = 1/s².
    """
    out = []
    for slot in range(len(inr.slots)):
        grid, vec = inr.weight_grids[slot], inr.vector_grids[slot]
        out.append((grid, (grid.shape[1] / inr.weight_scale[slot]) ** 2))
        out.append((vec, 1.0 / inr.vector_scale[slot, : vec.shape[1]].clamp_min(1e-8) ** 2))
    return out


def optimizers(inr: WeightINR, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    """SGD on the grids (decay on conv/linear weights only), or AdamW as the single recipe uses;
    with ``train_mlp``, the MLP that makes each size's corrections (the rest of the INR) as well.

    Why AdamW for the MLP beside SGD on the grids: its outputs are in normalised units through
    heads that start at zero, so no one SGD rate suits every layer of it; the single recipe
    trains it with AdamW at ``mlp_lr``. Returns (optimiser, the MLP's optimiser or None).
    """
    pc = cfg.progressive
    weights = list(inr.weight_grids)
    vectors = list(inr.vector_grids)
    rest = [p for p in inr.parameters() if all(p is not g for g in (*weights, *vectors))] if pc.train_mlp else []
    if pc.optimizer == "adamw":
        groups = [{"params": weights + vectors, "lr_scale": 1.0}]
        if rest:
            groups.append({"params": rest, "lr_scale": (cfg.mlp_lr or cfg.lr) / cfg.lr})
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay), None
    groups = [{"params": weights, "weight_decay": pc.weight_decay}, {"params": vectors, "weight_decay": 0.0}]
    sgd = torch.optim.SGD(groups, lr=pc.lr, momentum=pc.momentum, nesterov=pc.momentum > 0)
    return sgd, (torch.optim.AdamW(rest, lr=cfg.mlp_lr or cfg.lr, weight_decay=0.0) if rest else None)


def sub_batch(n: int, parts: int, k: int) -> slice:
    """The rows of a batch of ``n`` that the ``k``-th smaller size of a step trains on: part ``k`` mod ``parts``.

    Why: a pass's CPU time on this scale follows its batch, hardly its width (a 75%-width network costs
    ~0.9 of the full size's pass); the smaller sizes learn the full size's soft predictions, a
    low-variance target, so half a batch each buys more steps for the same CPU-seconds.
    """
    k %= parts
    return slice(k * n // parts, (k + 1) * n // parts)


def check_sub_batches(batch_size: int, world: int, parts: int) -> None:
    """Refuse, before any training, a batch whose parts would hold under two images (BatchNorm in training needs two)."""
    if parts > 1 and batch_size // world < 2 * parts:
        raise ConfigError(f"--sub-batches {parts} splits each process's batch of {batch_size // world} images into parts of "
                          f"fewer than 2; use --batch-size {2 * parts * world} or more (and as many training images), or fewer sub-batches")


def train_progressive(cfg: TrainConfig, ds: Dataset, manifold: Manifold, ema: Manifold, device, run_dir: Path,
                      state: dict | None, progress: Progress, d: Dist, saver: ManifoldPhase, base: nn.Module | None = None) -> None:
    """Train every size from the initialised INR (the base network) with the sandwich rule.

    With ``full_every`` = n > 1 the full size takes its label gradient on every n-th step only and
    otherwise just teaches (one forward pass without gradient, a third of a trained pass): it is
    trained already, and the steps it frees go to the sizes that are not. With ``one_size`` a step
    trains one size of the sandwich in turn (the ablation of training them together): the full size
    on its turn, otherwise its forward pass teaches the one size that learns. With ``teacher="base"``
    the frozen ``base`` network (in eval mode) teaches instead: a fixed target that keeps the base's
    accuracy where the full size's own predictions move while it re-trains. With ``label_weight`` the
    smaller sizes also learn the labels (distillation + weight x cross-entropy), as OFA's children do.
    """
    pc = cfg.progressive
    space, inr = manifold.space, manifold.inr
    if not inr.cfg.weight_grid:
        raise ConfigError("the progressive recipe trains the INR's weight grids; use it with weight_grid=True")
    if pc.teacher == "base" and base is None:
        raise ConfigError("teacher='base' needs the base network: pass it to train_progressive")
    teacher = base.eval() if pc.teacher == "base" else None
    if not pc.train_mlp:
        for p in inr.parameters():
            p.requires_grad_(False)
        for p in inr.grid_parameters():
            p.requires_grad_(True)
    opt, mlp_opt = optimizers(inr, cfg)
    opts = (opt,) if mlp_opt is None else (opt, mlp_opt)
    precond = grid_preconditioners(inr) if pc.optimizer == "sgd" else []
    prec = Precision(cfg.precision, torch.device(device))
    synced = d.enabled and cfg.sync_bn and inr.bn
    pos = saver.resume(state, opts, prec)
    widths, depths = manifold.info.seen_widths, manifold.info.seen_depths
    smallest = sample_bottom(widths, depths, None)
    spe = steps_per_epoch(ds, cfg.batch_size)
    total = cfg.epochs * spe
    rate = pc.lr if pc.optimizer == "sgd" else cfg.lr
    warmup = max(min(spe, total // 20), min(20, total // 2))
    ce_fn = nn.CrossEntropyLoss()
    progress.phase("manifold (progressive)", total, pos.global_step(spe))

    def step(t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        inr.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + t)
        configs = [space.full] + ([bottom_of_step(widths, depths, gen, t, pc.bottom_depth)] if pc.smallest else [])
        configs += [random_size(space, widths, depths, gen, pc, k, t, cfg.seed) for k in range(pc.random_sizes)]
        set_lr(opt, cosine_lr(t, total, rate, warmup=warmup))
        if mlp_opt is not None:
            set_lr(mlp_opt, cosine_lr(t, total, cfg.mlp_lr or cfg.lr, warmup=warmup))
        for o in opts:
            o.zero_grad(set_to_none=True)
        soft = None
        if teacher is not None:
            with torch.no_grad(), prec.autocast():
                soft = teacher_probs(teacher(x), pc.temperature)
        full_weight = pc.full_weight_at(t, total)
        turn = t % len(configs) if pc.one_size else None  # the one size this step trains, if only one
        full_learns = t % pc.full_every == 0 and turn in (None, 0)
        for i, config in enumerate(configs):
            if i > 0 and turn is not None and i != turn:
                continue
            net = manifold.training_net(config)
            if synced:
                sync_batchnorm(net)
            part = slice(None) if i == 0 else sub_batch(len(x), pc.sub_batches, i - 1)
            with prec.autocast(), torch.set_grad_enabled(i > 0 or full_learns):
                logits = functional_call(net, inr.generate(config), (x[part],))
                if i == 0:
                    loss = ce_fn(logits, y) * full_weight
                elif not pc.inplace_distill:
                    loss = ce_fn(logits, y[part])
                else:
                    loss = distill_loss(pc.distill_loss, logits, soft[part], pc.temperature)
                    if pc.label_weight:
                        loss = loss + pc.label_weight * ce_fn(logits, y[part])
            if i == 0:
                if teacher is None:
                    soft = teacher_probs(logits.detach(), pc.temperature)
                full_loss, full_acc = loss.item() / full_weight, (logits.argmax(1) == y).float().mean().item()
            if loss.requires_grad:
                prec.backward(loss)
        all_reduce_grads(inr.parameters(), d)
        prec.unscale(*opts)
        with torch.no_grad():
            for p, k in precond:
                if p.grad is not None:
                    p.grad.mul_(k)
        prec.step(*opts)
        with torch.no_grad():
            for pe, p in zip(ema.inr.parameters(), inr.parameters()):
                pe.lerp_(p, 1 - pc.ema)
        progress.advance(1, loss=full_loss, acc=full_acc)

    run_phase(ds, cfg.batch_size, cfg.seed, cfg.epochs, pos, device, step,
              lambda p: saver.save(p, opts, prec), cfg.save_every, saver.end_epoch(smallest), d.shard)
