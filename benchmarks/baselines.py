"""The networks a manifold is compared against in ``benchmarks/fidelity.py``.

- an individually trained network of one config: the library's base recipe
  (:func:`metaforge.train.base.train_base`) on a space whose full size *is* that config;
- L1 channel pruning of the base network (Li et al. 2017, "Pruning filters for efficient
  ConvNets"), with an optional short fine-tune;
- a NeuMeta-style manifold: the library's training with the sampled sizes constrained so only the
  last stage is metamorphic (widths), everything before it fixed at full width and depth.

Each trains through the library's own code and caches in a run folder, so a rerun resumes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from metaforge.data import Dataset
from metaforge.evaluate import recalibrate_batchnorm
from metaforge.layout import group_width, is_fixed, layers
from metaforge.manifold import Manifold
from metaforge.model_io import load_model, save_model
from metaforge.nets import ResNet
from metaforge.permute import channel_scores
from metaforge.progress import Progress
from metaforge.space import ArchConfig, ArchSpace
from metaforge.train import run as train_run
from metaforge.train.base import BASE_FILE, train_base
from metaforge.train.config import TrainConfig
from metaforge.train.loop import cosine_lr, epoch_batches, set_lr, steps_per_epoch
from metaforge.train.state import load_state


# ---- individually trained --------------------------------------------------------------------
def point_space(space: ArchSpace, config: ArchConfig) -> ArchSpace:
    """A space holding exactly ``config``, so ``train_base`` trains that config from scratch."""
    return dataclasses.replace(space, max_widths=config.widths, max_depths=config.depths,
                               min_widths=config.widths, min_depths=config.depths)


def train_individual(cfg: TrainConfig, ds: Dataset, space: ArchSpace, config: ArchConfig, run_dir: Path,
                     device, progress: Progress | None = None) -> ResNet:
    """``config`` trained alone with the base recipe for ``cfg.base_epochs`` (resumes from ``run_dir``)."""
    cfg = dataclasses.replace(cfg, base_path=None, batch_size=min(cfg.batch_size, len(ds.train)))
    run_dir.mkdir(parents=True, exist_ok=True)
    state = load_state(run_dir) if not (run_dir / BASE_FILE).exists() else None
    return train_base(cfg, ds, point_space(space, config), device, run_dir, state, progress or Progress()).eval()


# ---- L1 channel pruning ----------------------------------------------------------------------
def l1_prune(base: ResNet, config: ArchConfig, by: str = "writers") -> ResNet:
    """The base network cut to ``config``: top-L1 channels of every group, the first blocks of every stage.

    ``by``: the L1 norm of the filters that write each channel (Li et al.'s filter pruning), or of the
    weights that read it ("readers", OFA's channel sort; see :func:`metaforge.permute.channel_scores`).
    BatchNorm (scale, shift and running statistics) is sliced with its channels; dropped blocks
    change the statistics downstream, which :func:`recalibrate_batchnorm` can re-estimate.
    """
    scores = channel_scores(base, config.depths, by=by)
    keep: dict[str, torch.Tensor] = {}
    for layer in layers(config):
        for group in (layer.out_group, layer.in_group):
            if group not in keep and not is_fixed(group):
                width = group_width(group, config, base.in_channels, base.num_classes)
                keep[group] = scores[group].topk(width).indices.sort().values
    src = base.state_dict()
    pruned = ResNet(config, base.in_channels, base.num_classes, base.norm)
    dst = {}
    for layer in layers(config):
        out_idx = keep.get(layer.out_group)
        in_idx = keep.get(layer.in_group)
        w = src[layer.weight_name]
        w = w if out_idx is None else w[out_idx]
        dst[layer.weight_name] = w if in_idx is None else w[:, in_idx]
        prefix = layer.path
        for name, t in src.items():
            if name.startswith(prefix + ".") and name != layer.weight_name and name not in dst:
                dst[name] = t if (out_idx is None or t.dim() == 0) else t[out_idx]
    pruned.load_state_dict(dst)
    return pruned.eval()


def fine_tune(net: ResNet, ds: Dataset, steps: int, batch_size: int, lr: float, seed: int, device) -> ResNet:
    """``steps`` SGD steps (the base recipe's optimiser, cosine from ``lr``) on the training split."""
    net = net.to(device)
    if steps <= 0:
        return net.eval()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    batch_size = min(batch_size, len(ds.train))
    spe = steps_per_epoch(ds, batch_size)
    t = 0
    for epoch in range((steps + spe - 1) // spe):
        for x, y in epoch_batches(ds, batch_size, seed + 17, epoch, 0, device):
            if t >= steps:
                break
            net.train()
            set_lr(opt, cosine_lr(t, steps, lr))
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            t += 1
    return net.eval()


def pruned_variants(base: ResNet, config: ArchConfig, calibration: torch.Tensor, ds: Dataset, ft_steps: int,
                    cfg: TrainConfig, cache: Path, device, by: str = "writers") -> dict[str, ResNet]:
    """Pruned as is, with BN recalibrated on the manifold's calibration images, and fine-tuned (cached).

    The fine-tune starts from the recalibrated net and ends with another recalibration: a few
    hundred steps leave BatchNorm's running averages (momentum 0.1) a mix of the old and new
    statistics, which is not what the weights were tuned with.
    """
    images = ds.norm.apply(calibration).to(device)
    raw = l1_prune(base, config, by).to(device)
    recal = recalibrate_batchnorm(l1_prune(base, config, by).to(device), images)
    path = cache / "finetuned.safetensors"
    if path.exists():
        tuned = load_model(path, device)[0].eval()
    else:
        start = recalibrate_batchnorm(l1_prune(base, config, by).to(device), images)
        tuned = fine_tune(start, ds, ft_steps, cfg.batch_size, cfg.base_lr / 10, cfg.seed, device)
        tuned = recalibrate_batchnorm(tuned, images)
        save_model(tuned, path, {"dataset": ds.name, "fine_tune_steps": str(ft_steps)})
    return {"prune": raw, "prune_recal": recal, "prune_ft": tuned}


# ---- NeuMeta-style: only the last stage is metamorphic --------------------------------------
def last_stage_widths(space: ArchSpace, fracs: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """Seen widths: every stage but the last fixed at full width; the last at ``fracs`` of it."""
    last = tuple(sorted({max(space.min_widths[-1], round(f * space.max_widths[-1])) for f in fracs}))
    return tuple((w,) for w in space.max_widths[:-1]) + (last,)


def train_last_stage_manifold(cfg: TrainConfig, out: Path, progress: Progress | None = None) -> Manifold:
    """The library's training, with the sampled sizes constrained to the last stage's width.

    ``metaforge.train.run.train`` builds its seen sets from ``seen_widths``/``seen_depths``; here
    they are replaced for this call only, so the step sampler never varies the first stages or any
    depth, and the manifold records those seen sets (its K rule and ``is_seen`` follow them).
    """
    cfg = dataclasses.replace(cfg, incremental=False)

    def widths(space: ArchSpace, fracs: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
        return last_stage_widths(space, fracs)

    def depths(space: ArchSpace) -> tuple[tuple[int, ...], ...]:
        return tuple((d,) for d in space.max_depths)

    with mock.patch.object(train_run, "seen_widths", widths), mock.patch.object(train_run, "seen_depths", depths):
        return train_run.train(cfg, out, resume=True, progress=progress)
