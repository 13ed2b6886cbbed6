"""Pruning + fine-tune's own run-to-run spread: the same base, sizes and steps, other fine-tuning seeds.

``fidelity.py`` fine-tunes each pruned size once (its data order and augmentation follow the run's
seed), so its prune_ft column is one draw per size; where the manifold and pruning + fine-tune are
level, that draw's noise decides the sign. This re-runs the fine-tune of a fidelity work folder's base
at chosen sizes with other seeds and prints each size's scores, mean and SD.

    python benchmarks/prune_noise.py runs/e11rd-s1 --configs "w=12,24,48 d=3,3,3" --seeds 101 102 --json noise.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from baselines import pruned_variants
from fidelity import slug

from metaforge.checkpoint import load_manifold
from metaforge.data import load_dataset
from metaforge.evaluate import accuracy
from metaforge.io import atomic_write_text
from metaforge.model_io import load_model
from metaforge.space import ArchConfig
from metaforge.train.config import TrainConfig
from metaforge.train.run import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="a fidelity.py work folder (its manifold names the base and holds the calibration images)")
    ap.add_argument("--configs", nargs="+", required=True, help='sizes to prune, e.g. "w=12,24,48 d=3,3,3"')
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="fine-tuning seeds (the run's own is its fidelity.json)")
    ap.add_argument("--steps", type=int, default=208, help="fine-tuning steps per size (rounds 11-13: 208)")
    ap.add_argument("--prune-by", choices=["writers", "readers"], default="readers")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    manifold = load_manifold(args.work / "manifold.safetensors")
    cfg = TrainConfig.from_dict(json.loads((args.work / "manifold.run" / "config.json").read_text())["train"])  # as fidelity_space.py
    if not cfg.base_path:
        raise SystemExit(f"{args.work}: its manifold names no base network (a progressive fidelity run has one)")
    device = resolve_device(args.device)
    ds = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    base = load_model(Path(cfg.base_path), device)[0].eval()
    rows = []
    for text in args.configs:
        c = ArchConfig.parse(text)
        scores = {}
        for seed in args.seeds:
            cache = args.work / f"prune-noise-{args.prune_by}" / f"seed{seed}" / slug(c)
            nets = pruned_variants(base, c, manifold.calibration, ds, args.steps, dataclasses.replace(cfg, seed=seed), cache,
                                   device, args.prune_by)
            scores[seed] = round(accuracy(nets["prune_ft"], ds.test, ds.norm, device=device), 4)
            print(f"{c}  seed {seed}: prune+FT {100 * scores[seed]:.2f}", flush=True)
        values = list(scores.values())
        rows.append({"config": str(c), "prune_ft": scores, "mean": round(statistics.fmean(values), 4),
                     "sd": round(statistics.stdev(values), 4) if len(values) > 1 else None})
    print("\n| config | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | SD |")
    print("|---|" + "---|" * (len(args.seeds) + 2))
    for r in rows:
        sd = f"{100 * r['sd']:.2f}" if r["sd"] is not None else "—"
        print(f"| {r['config']} | " + " | ".join(f"{100 * v:.2f}" for v in r["prune_ft"].values()) + f" | {100 * r['mean']:.2f} | {sd} |")
    if args.json:
        atomic_write_text(args.json, json.dumps({"work": str(args.work), "steps": args.steps, "prune_by": args.prune_by,
                                                 "test_images": len(ds.test), "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
