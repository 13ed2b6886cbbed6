"""Phase 1 of training: the full-size base network with BatchNorm (trained, or loaded with --base)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from metaforge.data import Dataset
from metaforge.errors import ConfigError
from metaforge.evaluate import accuracy
from metaforge.model_io import load_model, save_model
from metaforge.nets import ResNet
from metaforge.progress import Progress
from metaforge.space import ArchSpace
from metaforge.train.config import TrainConfig
from metaforge.train.dist import Dist, all_reduce_grads
from metaforge.train.loop import Position, cosine_lr, run_phase, set_lr, steps_per_epoch
from metaforge.train.precision import Precision
from metaforge.train.state import restore_rng_states, rng_states, save_state
from metaforge.train.syncbn import sync_batchnorm

BASE_FILE = "base.safetensors"


def train_base(cfg: TrainConfig, ds: Dataset, space: ArchSpace, device, run_dir: Path, state: dict | None, progress: Progress,
               d: Dist = Dist()) -> ResNet:
    """Train the full-size network with BatchNorm (or load ``--base``); rank 0 alone writes files."""
    if cfg.base_path:
        model, _ = load_model(cfg.base_path, device)
        if model.config != space.full or model.norm != "batch" or model.in_channels != space.in_channels or model.num_classes != space.num_classes:
            raise ConfigError(
                f"--base {cfg.base_path} is '{model.config}' (norm={model.norm}, {model.in_channels} in, "
                f"{model.num_classes} classes); this run needs '{space.full}' with BatchNorm, "
                f"{space.in_channels} in, {space.num_classes} classes"
            )
        return model
    if (run_dir / BASE_FILE).exists():
        return load_model(run_dir / BASE_FILE, device)[0]
    torch.manual_seed(cfg.seed)
    model = ResNet(space.full, space.in_channels, space.num_classes, "batch").to(device)
    if d.enabled and cfg.sync_bn:
        sync_batchnorm(model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.base_lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    prec = Precision(cfg.precision, torch.device(device))
    pos = Position()
    if state and state.get("phase") == "base":
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        prec.load_state_dict(state.get("scaler"))
        restore_rng_states(state.get("rng"), torch.device(device))
        pos = Position(state["epoch"], state["step"])
    spe = steps_per_epoch(ds, cfg.batch_size)
    total = cfg.base_epochs * spe
    progress.phase("base network", total, pos.global_step(spe))
    loss_fn = nn.CrossEntropyLoss()

    def step(t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        model.train()
        set_lr(opt, cosine_lr(t, total, cfg.base_lr, warmup=spe))
        with prec.autocast():
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        prec.backward(loss)
        all_reduce_grads(model.parameters(), d)
        prec.step(opt)
        progress.advance(1, loss=loss.item())

    def save(p: Position) -> None:
        if d.main:
            save_state(run_dir, {"phase": "base", "epoch": p.epoch, "step": p.step, "model": model.state_dict(),
                                 "opt": opt.state_dict(), "scaler": prec.state_dict(), "rng": rng_states(torch.device(device))})

    def end_epoch(epoch: int) -> None:
        if d.main:
            progress.log(f"base epoch {epoch}/{cfg.base_epochs}: val top-1 {accuracy(model, ds.val, ds.norm, device=device):.4f}")

    run_phase(ds, cfg.batch_size, cfg.seed, cfg.base_epochs, pos, device, step, save, cfg.save_every, end_epoch, d.shard)
    if d.main:
        save_model(model, run_dir / BASE_FILE, {"dataset": ds.name})
    return model.eval()
