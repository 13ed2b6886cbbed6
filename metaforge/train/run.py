"""The training pipeline: base network -> ground truth -> INR initialisation -> manifold -> table.

Every phase saves a resumable state in the run folder; ``train(..., resume=True)`` continues
from the last one. Only the finished manifold is written to ``out``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import torch

from metaforge.accuracy_survey import measure_accuracy_model
from metaforge.checkpoint import load_manifold, round_to_storage, save_manifold
from metaforge.cost import count_cost
from metaforge.data import Dataset, load_dataset
from metaforge.errors import CheckpointError, ConfigError
from metaforge.evaluate import accuracy, calibration_images
from metaforge.inr import WeightINR
from metaforge.io import atomic_write_text, ensure_writable
from metaforge.manifold import QUICK_CALIBRATION, Manifold, ManifoldInfo
from metaforge.model_io import load_model
from metaforge.nets import ResNet
from metaforge.progress import Progress
from metaforge.space import ArchSpace, make_space
from metaforge.train.base import BASE_FILE, train_base
from metaforge.train.config import TrainConfig
from metaforge.train.dist import barrier, broadcast_module, current, device_for, same_everywhere
from metaforge.train.init import ground_truth, init_inr
from metaforge.train.precision import Precision
from metaforge.train.phase import ManifoldPhase
from metaforge.train.progressive import check_sub_batches, train_progressive
from metaforge.train.single import train_manifold
from metaforge.train.sampling import continuous_widths, evaluation_grid, seen_depths, seen_widths
from metaforge.train.state import STATE_FILE, load_state, remove_partial_writes, save_state

CONFIG_FILE = "config.json"
PHASES = ("base", "init", "manifold", "done")  # the phases a run folder's state can be in


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is visible; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda") from None


def user_cpu_seconds() -> float:
    """This process's user CPU time (all its threads), as the benchmarks count it; 0 where unknown."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def default_run_dir(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".run")


def resume_run(run_dir: str | Path, progress: Progress | None = None, device: str | None = None, out: str | Path | None = None) -> Manifold:
    """Continue an interrupted run from its folder (settings and output path are read from it).

    The saved output path is trusted only where it cannot surprise: beside the run folder, as
    `train` lays them out by default. Any other (a custom --run-dir, or an edited config.json
    naming some other file) must be confirmed by passing it as ``out``.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a training run folder (no {CONFIG_FILE}); start a run with `metaforge train`")
    try:
        saved = json.loads(path.read_text())
        cfg = TrainConfig.from_dict(saved["train"])
        saved_out = Path(saved["out"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is damaged ({e}); delete the run folder and start again") from None
    if out is None:
        if default_run_dir(saved_out).resolve() != run_dir.resolve():
            raise ConfigError(f"{run_dir} writes its manifold to {saved_out}, which is not beside the run folder: "
                              f"pass --out {saved_out} to confirm (or another path)")
        out = saved_out
    if device:
        cfg = dataclasses.replace(cfg, device=device)
    return train(cfg, out, run_dir, progress, resume=True)


def _resume_point(state: dict | None, run_dir: Path, out: Path) -> list[float]:
    """What a resume would start from, as numbers every rank can compare."""
    phase = state.get("phase") if state else None
    return [PHASES.index(phase) if phase in PHASES else -1, (state or {}).get("epoch", 0), (state or {}).get("step", 0),
            (run_dir / BASE_FILE).is_file(), out.is_file()]


def train(cfg: TrainConfig, out: str | Path, run_dir: str | Path | None = None, progress: Progress | None = None, resume: bool = False) -> Manifold:
    """Train a manifold end to end and write it to ``out``; returns the (EMA) manifold.

    Inside an initialised process group (torchrun, see :mod:`metaforge.train.dist`) every rank
    trains on its part of each global batch of ``cfg.batch_size``; rank 0 alone writes the run
    folder and ``out`` and reports progress, and only its manifold carries the accuracy table.
    """
    d = current()
    progress = (progress or Progress()) if d.main else Progress()
    out = Path(out)
    run_dir = Path(run_dir) if run_dir else default_run_dir(out)
    if d.main:  # an unwritable output fails now, not after the training (fresh runs and resumes alike)
        ensure_writable(out)
        ensure_writable(run_dir, folder=True)
    started = time.time()
    device = device_for(resolve_device(cfg.device), d)
    Precision(cfg.precision, device)  # an impossible precision fails before any work
    ds = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    space = make_space(cfg.preset, ds.in_channels, ds.num_classes, ds.image_size, cfg.min_width_frac, cfg.min_depth)
    state = load_state(run_dir) if resume else None
    if resume and not same_everywhere(_resume_point(state, run_dir, out), d, device):
        raise CheckpointError(f"the processes see different states in {run_dir}: resuming on several nodes needs "
                              "the run folder (and --out) on a filesystem every node shares")
    if state and state.get("phase") == "done":  # nothing left to do
        if not out.is_file():
            raise CheckpointError(f"the run in {run_dir} finished, but its output {out} is gone; "
                                  f"start a new run with `metaforge train --out {out}`")
        return load_manifold(out, device)
    if cfg.base_path:  # a bad --base fails before the run folder is written
        load_model(cfg.base_path)
    batch_size = min(cfg.batch_size, len(ds.train))
    if batch_size % d.world:
        raise ConfigError(f"--batch-size {batch_size} does not split over {d.world} processes: use a multiple of {d.world}")
    if cfg.recipe == "progressive":
        check_sub_batches(batch_size, d.world, cfg.progressive.sub_batches)
    cfg_run = dataclasses.replace(cfg, batch_size=batch_size)
    if d.main:
        if not resume:  # a fresh run: forget an earlier run's state in the same folder
            for name in (STATE_FILE, BASE_FILE):
                (run_dir / name).unlink(missing_ok=True)
        remove_partial_writes(run_dir)
        atomic_write_text(run_dir / CONFIG_FILE, json.dumps({"out": str(out), "train": cfg.to_dict()}, indent=2) + "\n")
    barrier(d)  # no rank may look for an earlier run's base network before rank 0 has removed it
    if not resume and not same_everywhere(_resume_point(None, run_dir, out), d, device):
        raise CheckpointError(f"another process still sees an earlier run's files in {run_dir}: several nodes need "
                              "the run folder on a filesystem every node shares (or a run folder of their own, emptied)")

    base = train_base(cfg_run, ds, space, device, run_dir, state, progress, d)
    if d.main:
        progress.log(f"base network '{space.full}': val top-1 {accuracy(base, ds.val, ds.norm, device=device):.4f}")
    truth = ground_truth(cfg_run, base)

    calibration = calibration_images(ds.train.images, cfg.seed, cfg.calibration_size) if cfg.bn_mode == "recalibrate" else None
    widths, depths = trained_widths(cfg, space), seen_depths(space)
    info = ManifoldInfo(
        dataset=ds.name, classes=ds.classes, normalization=ds.norm, bn_mode=cfg.bn_mode,
        seen_widths=widths, seen_depths=depths, samples=cfg.samples, train_config=cfg.to_dict(),
    )

    phase = state.get("phase") if state else None
    if phase in ("init", "manifold"):  # the INR is in the state: no re-initialisation
        inr = WeightINR(space, cfg.inr, bn=cfg.bn_mode == "recalibrate").to(device)
        inr.load_state_dict(state["inr"])
    else:
        inr, final_recon = init_inr(cfg_run, space, truth, device, progress)
        broadcast_module(inr, d)  # the same start on every rank, whatever the device's arithmetic
        progress.log(f"INR initialised: relative reconstruction error {final_recon:.4f}")
        if d.main:
            save_state(run_dir, {"phase": "init", "inr": inr.state_dict()})
    manifold = Manifold(inr, info, calibration)
    ema = Manifold(copy.deepcopy(inr).requires_grad_(False), info, calibration)
    if phase != "manifold" and d.main:
        progress.log(f"INR initialised: full size val top-1 {accuracy(ema.materialize(space.full, calibration=QUICK_CALIBRATION), ds.val, ds.norm, device=device):.4f}")
    if cfg.recipe == "progressive":
        train_progressive(cfg_run, ds, manifold, ema, device, run_dir, state, progress, d,
                          ManifoldPhase(cfg_run, ds, manifold, ema, device, run_dir, progress, d), base=base)
    else:
        train_manifold(cfg_run, ds, manifold, ema, truth, device, run_dir, state, progress, teacher=base.eval(), d=d)

    if d.main:
        progress.log("evaluating the accuracy-vs-size table on the test split")
        trained, trained_cpu = time.time(), user_cpu_seconds()
        info.base_accuracy = accuracy(base, ds.test, ds.norm, device=device)
        round_to_storage(ema.inr)  # the table measures the weights the file will hold
        info.accuracy = size_table(ema, ds, space, device, progress)
        ema.accuracy_record = measure_accuracy_model(ema, ds.val, ds.norm, train_seconds=trained - started, device=device, progress=progress)
        # what the evaluation after training cost (the size table, the survey): benchmarks compare training alone
        info.train_config = {**cfg.to_dict(), "wall_time_s": round(time.time() - started, 1),
                             "evaluation_wall_s": round(time.time() - trained, 1),
                             "evaluation_user_cpu_s": round(user_cpu_seconds() - trained_cpu, 1)}
        ema.inr.cpu()
        save_manifold(ema, out)
        save_state(run_dir, {"phase": "done"})
    barrier(d)  # no rank leaves (and tears the group down) before rank 0 has written the manifold
    return ema


def trained_widths(cfg: TrainConfig, space: ArchSpace) -> tuple[tuple[int, ...], ...]:
    """Per stage, the widths the manifold phase samples (stored as the manifold's seen widths)."""
    if cfg.recipe == "progressive" and cfg.progressive.widths == "continuous":
        return continuous_widths(space, cfg.progressive.holdout_width_fracs)
    return seen_widths(space, cfg.seen_width_fracs)


def size_table(manifold: Manifold, ds: Dataset, space: ArchSpace, device, progress: Progress) -> list[dict]:
    """Test accuracy, parameters and FLOPs of the evaluation grid (seen and unseen sizes)."""
    shape = (space.in_channels, space.image_size, space.image_size)
    full_macs = count_cost(ResNet(space.full, space.in_channels, space.num_classes), shape).macs
    rows = []
    grid = evaluation_grid(space)
    progress.phase("accuracy table", len(grid))
    for config in grid:
        net = manifold.materialize(config)
        cost = count_cost(net, shape)
        rows.append({
            "config": str(config), "params": cost.params, "mflops": round(cost.mflops, 3),
            "flops_frac": round(cost.macs / full_macs, 4),
            "top1": round(accuracy(net, ds.test, ds.norm, device=device), 4), "seen": manifold.is_seen(config),
        })
        progress.advance(1)
    return rows
