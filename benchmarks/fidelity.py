"""Fidelity: does one manifold replace a shelf of separately trained networks? (issue 5)

At every compared size, on the same test split, the script trains and scores:
  manifold      the library's manifold (``metaforge train`` defaults), materialised with the K rule;
  individual    the same config trained alone, base recipe, base + manifold epochs;
  prune         L1 channel pruning of the base network (as is; with BN recalibrated on the
                manifold's own 256 calibration images; and with a short fine-tune);
  neumeta       a manifold whose sampled sizes vary only the last stage's width;
and the ablations fold (BN folded, NeuMeta's treatment), no-permute, K=1, no-incremental.
Everything is cached in ``--work``; a rerun resumes the unfinished parts and reuses the rest.

    OMP_NUM_THREADS=1 python benchmarks/fidelity.py --quick --work runs/fid-quick
    OMP_NUM_THREADS=1 python benchmarks/fidelity.py --work runs/fid          # the 60-minute scale
    python benchmarks/fidelity.py --data cifar10 --data-dir DIR --limit 0 --base-epochs 60 --epochs 120 --work runs/fid-c10
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import torch

from baselines import l1_prune, last_stage_widths, pruned_variants, train_individual, train_last_stage_manifold
from fidelity_compute import compute_summary, expected_macs, training_flops
from fidelity_report import plot, print_tables
from host import host_info

from metaforge.cost import count_cost
from metaforge.data import Dataset, Split, load_dataset
from metaforge.evaluate import accuracy
from metaforge.io import atomic_write_text
from metaforge.model_io import load_model
from metaforge.nets import ResNet
from metaforge.space import ArchConfig, make_space
from metaforge.train.base import BASE_FILE
from metaforge.inr_config import INRConfig
from metaforge.train.config import RECIPE_CHANNEL_ORDER, RECIPE_MLP_LR, RECIPE_WIDTH_MAP, TrainConfig
from metaforge.train.loop import steps_per_epoch
from metaforge.train import run as train_run
from metaforge.train.run import resolve_device, train
from metaforge.train.sampling import bottom_of_step, random_size

# (width fraction, depth below full): full, unseen-between, shallower, seen, ..., below the seen widths
SIZES = ((1.0, 0), (0.875, 0), (1.0, 1), (0.75, 0), (0.875, 1), (0.625, 0), (0.5, 0), (0.625, 1), (0.375, 0))
NEUMETA_FRACS = (0.25, 0.5, 0.625, 0.75, 1.0)  # last-stage widths the NeuMeta-style manifold is scored at
ABLATIONS = {"fold": {"bn_mode": "fold"}, "no_permute": {"permute": False}, "no_incremental": {"incremental": False}}
VAL_LOGGED = 1000  # training only logs validation accuracy; scoring it on 5,000 images would cost more than the steps
MODES = {  # limit, base epochs, manifold epochs, test images (None: all)
    "quick": (2000, 4, 8, 5000),
    "default": (10000, 6, 12, None),
}
# The progressive recipe starts from a base as good as an individually trained network: the
# shelf's own 18 epochs; its phase then gets what is left of half the shelf's CPU time: 11 epochs
# (measured 0.462-0.477x with the unit timed in the same run, 0.47-0.48x by FLOPs; docs/BENCHMARKS.md, round 13)
PROGRESSIVE_MODES = {"quick": (2000, 12, 4, 5000), "default": (10000, 18, 11, None)}
SANDWICH_STEP_COST = 2.0  # a progressive step (full + smallest + 2 random sizes) measured ~2x a full-size step


class Bench:
    """The work folder: cached results (eval.json) and phase timings (timings.json)."""

    def __init__(self, work: Path, setting: dict) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        saved = self._read("setting.json")
        if saved and saved != setting:  # cached scores and nets belong to one setting
            raise SystemExit(f"{work} holds a run with {saved}, not {setting}: give another --work")
        self._write("setting.json", setting)
        self.evals = self._read("eval.json")
        self.timings = self._read("timings.json")

    def _read(self, name: str) -> dict:
        p = self.work / name
        return json.loads(p.read_text()) if p.exists() else {}

    def _write(self, name: str, d: dict) -> None:
        atomic_write_text(self.work / name, json.dumps(d, indent=1) + "\n")

    def _update(self, name: str, d: dict, key: str) -> None:
        """Write ``d[key]`` into the file, keeping what other processes wrote meanwhile.

        Several processes may share a work folder (e.g. one training the individual networks
        while another runs the rest); a lock makes each read-merge-write whole.
        """
        with open(self.work / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = {**self._read(name), key: d[key]}
            self._write(name, merged)
        d.update(merged)

    def timed(self, key: str, fn: Callable):
        """Run ``fn``, adding its wall and user-CPU seconds to ``key`` until it completes once.

        An interrupted phase (SIGTERM, Ctrl-C) keeps its partial time, so a resumed phase reports
        the sum of its runs; a phase already completed is only loaded and adds nothing.
        """
        rec = self.timings.setdefault(key, {"wall_s": 0.0, "user_cpu_s": 0.0, "runs": 0, "done": False})
        rec.setdefault("runs", 1)
        rec.setdefault("done", True)  # a record without the flag was written on completion
        t, u = time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        ok = False
        try:
            out = fn()
            ok = True
            return out
        finally:
            if not rec["done"]:
                rec["wall_s"] = round(rec["wall_s"] + time.time() - t, 1)
                rec["user_cpu_s"] = round(rec["user_cpu_s"] + resource.getrusage(resource.RUSAGE_SELF).ru_utime - u, 1)
                rec["runs"] += 1
                rec["done"] = ok
                self._update("timings.json", self.timings, key)
                print(f"[{key}] {rec}", flush=True)

    def score(self, method: str, config: ArchConfig, make_net: Callable, test: Split, norm, device) -> float:
        key = f"{method}|{config}"
        if key not in self.evals:
            self.evals[key] = round(accuracy(make_net(), test, norm, device=device), 4)
            self._update("eval.json", self.evals, key)
            print(f"  {method:<16} {str(config):<24} {self.evals[key]:.4f}", flush=True)
        return self.evals[key]


def capped_val(ds: Dataset) -> Dataset:
    return dataclasses.replace(ds, val=Split(ds.val.images[:VAL_LOGGED], ds.val.labels[:VAL_LOGGED]))


@contextmanager
def logged_val_capped() -> Iterator[None]:
    """Training runs (``metaforge.train.run.train``) see a validation split of ``VAL_LOGGED`` images.

    The library uses validation only for its progress log (never to select anything), so this
    changes no result; on a small run it saves most of the CPU time spent outside the steps.
    """
    real = train_run.load_dataset
    with mock.patch.object(train_run, "load_dataset", lambda *a, **k: capped_val(real(*a, **k))):
        yield


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so an interrupted phase records its time
    with logged_val_capped():
        run()


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="folder for every trained artefact and cached score")
    ap.add_argument("--quick", action="store_true", help="the <=10-minute smoke scale (%s)" % (MODES["quick"],))
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default="resnet20")
    ap.add_argument("--limit", type=int, default=None, help="training images (0: all); default from the mode")
    ap.add_argument("--base-epochs", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="manifold epochs")
    ap.add_argument("--test-limit", type=int, default=None, help="score on the first N test images (0: all)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", nargs="*", default=[], choices=["individual", "prune", "neumeta", "ablations"])
    ap.add_argument("--recipe", default="progressive", choices=["progressive", "single"], help="the manifold's training recipe")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="training settings, e.g. progressive.random_sizes=1 inr.width_map=nested (values in JSON)")
    ap.add_argument("--shelf", type=Path, default=None,
                    help="a fidelity JSON whose individually trained networks (scores and CPU time) are reused, not retrained")
    ap.add_argument("--base-from", type=Path, default=None,
                    help="progressive: a work folder whose base network (and its timing) this run shares")
    ap.add_argument("--individual-epochs", type=int, default=None,
                    help="the individually trained networks' epochs (default: progressive, the base's; single, base + manifold)")
    ap.add_argument("--unit-from", type=Path, default=None,
                    help="a work folder whose base, an individually trained full size, is the compute unit (for a run "
                         "whose own base is shorter than the individual networks, or has none: --base-epochs 0)")
    ap.add_argument("--prune-by", choices=["writers", "readers"], default="writers",
                    help="pruning keeps the channels with the largest L1 norm of the filters that write them (Li et al.) "
                         "or of the weights that read them (OFA's sort); readers cache in WORK/prune-readers")
    ap.add_argument("--prune-steps", type=int, default=None,
                    help="fine-tuning steps per pruned size (default: the pruned shelf costs about the manifold phase)")
    ap.add_argument("--no-train", action="store_true", help="report only what is trained already (skip the rest)")
    ap.add_argument("--json", type=Path, default=None, help="results file (default WORK/fidelity.json)")
    ap.add_argument("--plot", type=Path, default=None, help="accuracy-vs-FLOPs PNG (default WORK/fidelity.png)")
    args = ap.parse_args()
    modes = PROGRESSIVE_MODES if args.recipe == "progressive" else MODES
    limit, base_epochs, epochs, test_limit = modes["quick" if args.quick else "default"]
    limit = limit if args.limit is None else (args.limit or None)
    base_epochs = args.base_epochs if args.base_epochs is not None else base_epochs
    epochs = args.epochs if args.epochs is not None else epochs
    test_limit = test_limit if args.test_limit is None else (args.test_limit or None)
    # individual networks get what the single recipe's manifold cost in epochs, or the progressive
    # recipe's base (itself an individually trained full size): 18 epochs at the default scale
    ind_epochs = args.individual_epochs or (base_epochs if args.recipe == "progressive" else base_epochs + epochs)
    if args.recipe == "progressive" and base_epochs != ind_epochs and args.unit_from is None and args.base_from is None:
        raise SystemExit(f"the base trains {base_epochs} epochs, the individual networks {ind_epochs}: the base is no compute "
                         "unit; name a work folder whose base is one with --unit-from")

    device = resolve_device(args.device)
    cfg = TrainConfig(dataset=args.data, data_dir=args.data_dir, preset=args.preset, seed=args.seed, device=args.device,
                      batch_size=args.batch_size, limit=limit, base_epochs=base_epochs, epochs=epochs, recipe=args.recipe,
                      # the recipe's map, channel order and MLP rate, as `metaforge train` picks them (--set overrides)
                      channel_order=RECIPE_CHANNEL_ORDER[args.recipe], inr=INRConfig(width_map=RECIPE_WIDTH_MAP[args.recipe]),
                      mlp_lr=RECIPE_MLP_LR[args.recipe])
    cfg = with_settings(cfg, args.set)
    ds = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    test = ds.test if not test_limit else Split(ds.test.images[:test_limit], ds.test.labels[:test_limit])
    bench = Bench(args.work, {"data": ds.name, "train": len(ds.train), "test": len(test), "preset": cfg.preset, "seed": cfg.seed,
                              "base_epochs": base_epochs, "epochs": epochs, "batch_size": cfg.batch_size,
                              **({"recipe": args.recipe} if args.recipe != "single" else {}), **({"set": args.set} if args.set else {}),
                              **({"prune_by": args.prune_by} if args.prune_by != "writers" else {})})
    space = make_space(cfg.preset, ds.in_channels, ds.num_classes, ds.image_size, cfg.min_width_frac, cfg.min_depth)
    shape = (space.in_channels, space.image_size, space.image_size)
    full_macs = count_cost(ResNet(space.full, *shape[:1], space.num_classes), shape).macs
    sizes = [space.scaled(f, tuple(d - k for d in space.max_depths)) for f, k in SIZES]
    spe = steps_per_epoch(ds, min(cfg.batch_size, len(ds.train)))
    print(f"{ds.name}: {len(ds.train)} train / {len(test)} test images, {spe} steps per epoch; "
          f"base {base_epochs} + manifold {epochs} epochs; {len(sizes)} sizes", flush=True)

    w = args.work
    if args.recipe == "progressive":  # the base is timed on its own (and may be shared between variants)
        base_file = shared_base(bench, args.base_from, cfg, ds, space, device)
        cfg = dataclasses.replace(cfg, base_path=str(base_file))
    manifold = bench.timed("manifold", lambda: train(cfg, w / "manifold.safetensors", resume=True))
    evaluation = manifold.info.train_config.get("evaluation_user_cpu_s")  # the size table and the survey, after training
    if evaluation is not None and bench.timings["manifold"].get("evaluation_user_cpu_s") != evaluation:
        bench.timings["manifold"]["evaluation_user_cpu_s"] = evaluation
        bench._update("timings.json", bench.timings, "manifold")
    if args.recipe != "progressive":
        base_file = w / "manifold.run" / BASE_FILE
    base = load_model(base_file, device)[0].eval()
    shared = dataclasses.replace(cfg, base_path=str(base_file))
    x = ds.norm.apply(test.images[:64]).to(device)  # self-check: pruning to the full size changes nothing
    assert (l1_prune(base, space.full)(x) - base(x)).abs().max() < 1e-5, "L1 pruning to the full size altered the network"
    rows = []
    for c in sizes:
        cost = count_cost(ResNet(c, *shape[:1], space.num_classes), shape)
        rows.append({"config": str(c), "params": cost.params, "mflops": round(cost.mflops, 3),
                     "flops_frac": round(cost.macs / full_macs, 4), "seen": manifold.is_seen(c),
                     "k": manifold.default_samples(c), "top1": {}})

    def score_all(method: str, make: Callable[[ArchConfig], object]) -> None:
        for c, row in zip(sizes, rows):
            row["top1"][method] = bench.score(method, c, lambda: make(c), test, ds.norm, device)

    score_all("manifold", manifold.materialize)
    for c, row in zip(sizes, rows):  # K=1 differs from the K rule only where the rule picks K > 1
        row["top1"]["manifold_k1"] = (row["top1"]["manifold"] if row["k"] == 1 else
                                      bench.score("manifold_k1", c, lambda: manifold.materialize(c, samples=1), test, ds.norm, device))
    base_top1 = bench.score("base", space.full, lambda: base, test, ds.norm, device)

    if "ablations" not in args.skip:
        for name, change in ABLATIONS.items():
            if args.no_train and not (w / f"ablation_{name}.safetensors").exists():
                continue
            m = bench.timed(f"ablation_{name}", lambda: train(dataclasses.replace(shared, **change), w / f"ablation_{name}.safetensors", resume=True))
            score_all(name, m.materialize)
    ft_steps = args.prune_steps or prune_ft_steps(cfg, epochs, spe, len(sizes))
    if "prune" not in args.skip:
        folder = "prune" if args.prune_by == "writers" else "prune-readers"
        for c, row in zip(sizes, rows):
            nets = bench.timed(f"prune|{c}", lambda: pruned_variants(base, c, manifold.calibration, ds, ft_steps, cfg, w / folder / slug(c),
                                                                        device, args.prune_by))
            for name, net in nets.items():
                row["top1"][name] = bench.score(name, c, lambda: net, test, ds.norm, device)
    if args.shelf is not None:
        reuse_shelf(args.shelf, bench, rows, {"dataset": ds.name, "train_images": len(ds.train), "test_images": len(test),
                                               "preset": cfg.preset, "batch_size": cfg.batch_size, "individual_epochs": ind_epochs})
    elif "individual" not in args.skip:
        ind = dataclasses.replace(cfg, base_epochs=ind_epochs, base_path=None)
        for i in spread_order(len(sizes)):  # an interrupted run has individual nets across the range
            c, row = sizes[i], rows[i]
            if args.no_train and not (w / "individual" / slug(c) / BASE_FILE).exists():
                continue
            net = bench.timed(f"individual|{c}", lambda: train_individual(ind, capped_val(ds), space, c, w / "individual" / slug(c), device))
            row["top1"]["individual"] = bench.score("individual", c, lambda: net, test, ds.norm, device)
    neumeta_rows = []
    if "neumeta" not in args.skip and not (args.no_train and not (w / "neumeta.safetensors").exists()):
        nm = bench.timed("neumeta", lambda: train_last_stage_manifold(shared, w / "neumeta.safetensors"))
        score_all("neumeta", nm.materialize)
        last_seen = last_stage_widths(space, cfg.seen_width_fracs)[-1]
        for f in NEUMETA_FRACS:
            c = space.check(ArchConfig(space.max_widths[:-1] + (max(space.min_widths[-1], round(f * space.max_widths[-1])),), space.max_depths))
            cost = count_cost(ResNet(c, *shape[:1], space.num_classes), shape)
            neumeta_rows.append({"config": str(c), "params": cost.params, "mflops": round(cost.mflops, 3),
                                 "flops_frac": round(cost.macs / full_macs, 4), "seen": c.widths[-1] in last_seen,
                                 "top1": {"neumeta": bench.score("neumeta", c, lambda: nm.materialize(c), test, ds.norm, device),
                                          "manifold": bench.score("manifold", c, lambda: manifold.materialize(c), test, ds.norm, device)}})

    compute = compute_summary(bench.timings, str(space.full), args.recipe == "progressive", compute_unit(args.unit_from, ind_epochs))
    compute.update(flops_summary(cfg, manifold, sizes, len(ds.train), base_epochs, epochs, ind_epochs, spe, shape, ft_steps))
    mpath = w / "manifold.safetensors"
    result = {
        "dataset": ds.name, "train_images": len(ds.train), "test_images": len(test), "preset": cfg.preset,
        "base_epochs": base_epochs, "manifold_epochs": epochs, "batch_size": cfg.batch_size,
        "individual_epochs": ind_epochs, "prune_ft_steps": ft_steps,
        "prune_by": args.prune_by,
        "recipe": args.recipe, "settings": args.set, "shelf": str(args.shelf) if args.shelf else None,
        "steps_per_epoch": spe, "base_top1": base_top1,
        "base_params": rows[0]["params"], "base_fp32_bytes": 4 * rows[0]["params"],  # plain (BN folded) full size
        "manifold_params": sum(p.numel() for p in manifold.inr.parameters()), "manifold_file_bytes": mpath.stat().st_size,
        "rows": rows, "neumeta_rows": neumeta_rows, "timings": bench.timings, "compute": compute, "host": host_info(),
    }
    out = args.json or w / "fidelity.json"
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print_tables(result)
    plot(result, args.plot or w / "fidelity.png")
    print(f"\nwrote {out}")


def flops_summary(cfg: TrainConfig, manifold, sizes: list[ArchConfig], images: int, base_epochs: int, epochs: int,
                  ind_epochs: int, spe: int, shape: tuple[int, ...], ft_steps: int) -> dict:
    """Analytic training FLOPs: the shelf, pruning's fine-tunes and (progressive) the manifold's expected cost."""
    space = manifold.space
    macs = lambda c: count_cost(ResNet(c, shape[0], space.num_classes), shape).macs  # noqa: E731
    out = {"shelf_train_gflops": round(sum(training_flops(images, ind_epochs, macs(c)) for c in sizes) / 1e9, 1),
           "prune_ft_train_gflops": round(sum(2 * 3 * ft_steps * cfg.batch_size * macs(c)
                                              for c in sizes) / 1e9, 1)}
    if cfg.recipe != "progressive":
        return out
    pc, info = cfg.progressive, manifold.info
    gen = torch.Generator().manual_seed(0)
    per_stage = expected_macs(lambda: random_size(space, info.seen_widths, info.seen_depths, gen, pc, pc.shared_fraction), macs)
    shared = expected_macs(lambda: random_size(space, info.seen_widths, info.seen_depths, gen, pc, 0), macs)
    bottom = expected_macs(lambda: bottom_of_step(info.seen_widths, info.seen_depths, gen, int(torch.randint(2, (1,), generator=gen)),
                                                  pc.bottom_depth), macs)
    full = macs(space.full) * (1 + 2 / pc.full_every) / 3  # between its learning steps the full size only runs forward
    step = (full + ((bottom if pc.smallest else 0)  # the smaller sizes each see 1/sub_batches of the batch
                    + pc.shared_fraction * shared + (pc.random_sizes - pc.shared_fraction) * per_stage) / pc.sub_batches)
    if pc.one_size:  # one trained size per step in turn; the full size runs forward on every step to teach
        n = 1 + int(pc.smallest) + pc.random_sizes
        step = macs(space.full) / 3 + (step - macs(space.full) / 3 * (1 + 2 / pc.full_every)) / n + 2 / 3 * macs(space.full) / (n * pc.full_every)
    if pc.teacher == "base":  # the frozen base's forward pass on every step's batch
        step += macs(space.full) / 3
    base = training_flops(images, base_epochs, macs(space.full))
    out.update(manifold_train_gflops=round((base + training_flops(images, epochs, step)) / 1e9, 1),
               phase_step_vs_full=round(step / macs(space.full), 3))
    out["manifold_vs_shelf_flops"] = round(out["manifold_train_gflops"] / out["shelf_train_gflops"], 3)
    return out


def with_settings(cfg: TrainConfig, items: list[str]) -> TrainConfig:
    """``cfg`` with KEY=VALUE overrides; KEY may name a field of ``progressive`` or ``inr``."""
    d = cfg.to_dict()
    for item in items:
        key, _, value = item.partition("=")
        *outer, name = key.split(".")
        target = d
        for part in outer:
            target = target[part]
        if name not in target:
            raise SystemExit(f"--set {item}: no setting {key!r}")
        target[name] = json.loads(value)
    return TrainConfig.from_dict(d)


def shared_base(bench: "Bench", base_from: Path | None, cfg: TrainConfig, ds: Dataset, space, device) -> Path:
    """The progressive recipe's base network, trained here (timed as "base") or taken from another work folder."""
    if base_from is None:
        bench.timed("base", lambda: train_individual(cfg, capped_val(ds), space, space.full, bench.work / "base", device))
        return bench.work / "base" / BASE_FILE
    timing = json.loads((base_from / "timings.json").read_text())["base"]
    if not timing.get("done"):
        raise SystemExit(f"{base_from}: its base network is not finished")
    bench.timings["base"] = {**timing, "shared_from": str(base_from)}
    bench._update("timings.json", bench.timings, "base")
    return base_from / "base" / BASE_FILE


def compute_unit(work: Path | None, ind_epochs: int) -> float | None:
    """User CPU-s of the full size trained alone for the individual networks' epochs, in ``work`` (None: none given)."""
    if work is None:
        return None
    setting = json.loads((work / "setting.json").read_text())
    if setting.get("base_epochs") != ind_epochs:
        raise SystemExit(f"--unit-from {work}: its base trained {setting.get('base_epochs')} epochs, the individual networks {ind_epochs}")
    timing = json.loads((work / "timings.json").read_text()).get("base", {})
    if not timing.get("done"):
        raise SystemExit(f"--unit-from {work}: its base network is not finished")
    return timing["user_cpu_s"]


def reuse_shelf(shelf: Path, bench: "Bench", rows: list[dict], setting: dict) -> None:
    """Take the individually trained networks' scores and CPU time from an earlier fidelity run."""
    doc = json.loads(shelf.read_text())
    differ = {k: (doc.get(k), v) for k, v in setting.items() if doc.get(k) != v}
    if differ:
        raise SystemExit(f"--shelf {shelf} was measured in another setting: {differ}")
    by_config = {r["config"]: r["top1"].get("individual") for r in doc["rows"]}
    for row in rows:
        if by_config.get(row["config"]) is not None:
            row["top1"]["individual"] = by_config[row["config"]]
    for key, rec in doc["timings"].items():
        if key.startswith("individual|"):
            bench.timings[key] = {**rec, "from_shelf": str(shelf)}


def prune_ft_steps(cfg: TrainConfig, epochs: int, spe: int, n_sizes: int) -> int:
    """Fine-tuning steps per pruned size: the whole pruned shelf costs about what the manifold phase did."""
    per_step = SANDWICH_STEP_COST if cfg.recipe == "progressive" else 1.0
    return round(epochs * spe * per_step / n_sizes)


def spread_order(n: int) -> list[int]:
    """0, n-1, then the midpoints of ever smaller gaps: any prefix covers the range evenly."""
    order, gaps = [0, n - 1] if n > 1 else [0], [(0, n - 1)]
    while len(order) < n:
        lo, hi = gaps.pop(0)
        if hi - lo > 1:
            mid = (lo + hi) // 2
            order.append(mid)
            gaps += [(lo, mid), (mid, hi)]
    return order


def slug(c: ArchConfig) -> str:
    return f"w{'-'.join(map(str, c.widths))}_d{'-'.join(map(str, c.depths))}"


if __name__ == "__main__":
    main()
