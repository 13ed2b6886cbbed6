"""Individually trained networks for any configs: the shelf's recipe, beyond the 9-size table.

The whole-space claim (issue 15) compares a manifold's random and held-out configs with networks
of the same config trained alone; the noise claim needs a second seed of the shelf at a few sizes.
Each config is trained with the base recipe for the shelf's epochs on the fidelity data, scored
on the test split, and timed; everything is cached in ``--work`` (a rerun resumes).

    # >=4 of fidelity_space.py's random configs and the 25%-width depth-1 config, seed 0:
    OMP_NUM_THREADS=1 python benchmarks/individual.py --work runs/ind-s0 --random-pick 0 3 6 9 \\
        --configs "w=4,8,16 d=1,1,1" --json docs/bench/individual-space-s0.json
    # a second seed of the shelf at three table sizes:
    OMP_NUM_THREADS=1 python benchmarks/individual.py --work runs/ind-s1 --seed 1 \\
        --configs "w=16,32,64 d=3,3,3" "w=14,28,56 d=2,2,2" "w=6,12,24 d=3,3,3" --json docs/bench/individual-shelf-s1.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from baselines import train_individual
from fidelity import MODES, PROGRESSIVE_MODES, Bench, capped_val, slug
from fidelity_space import flops_fraction, random_spread
from host import host_info

from metaforge.data import load_dataset
from metaforge.io import atomic_write_text
from metaforge.space import ArchConfig, make_space
from metaforge.train.config import TrainConfig
from metaforge.train.run import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0, help="seed of the data subset, initialisation and batches")
    ap.add_argument("--configs", nargs="*", default=[], help='configs such as "w=4,8,16 d=1,1,1"')
    ap.add_argument("--random-pick", type=int, nargs="*", default=[],
                    help="indices into fidelity_space.py's random spread (its --random 12 --seed 7 list)")
    ap.add_argument("--epochs", type=int, default=PROGRESSIVE_MODES["default"][1], help="the shelf's epochs per network")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    limit = MODES["default"][0]
    cfg = TrainConfig(dataset="fashion-mnist", limit=limit, seed=args.seed, batch_size=128, base_epochs=args.epochs)
    ds = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    space = make_space(cfg.preset, ds.in_channels, ds.num_classes, ds.image_size, cfg.min_width_frac, cfg.min_depth)
    spread = random_spread(space, 12, 7)
    configs = [space.check(ArchConfig.parse(c)) for c in args.configs] + [spread[i] for i in args.random_pick]
    bench = Bench(args.work, {"dataset": ds.name, "train_images": len(ds.train), "seed": args.seed, "epochs": args.epochs})
    device = resolve_device(cfg.device)
    rows = []
    print("| config | FLOPs % | individual | CPU-s |\n|---|---|---|---|")
    for c in configs:
        net = bench.timed(f"individual|{c}", lambda: train_individual(cfg, capped_val(ds), space, c, args.work / slug(c), device))
        top1 = bench.score("individual", c, lambda: net, ds.test, ds.norm, device)
        frac = flops_fraction(space, c)
        cpu = bench.timings[f"individual|{c}"]["user_cpu_s"]
        rows.append({"config": str(c), "flops_frac": round(frac, 4), "top1": top1, "user_cpu_s": cpu,
                     "wall_s": bench.timings[f"individual|{c}"]["wall_s"]})
        print(f"| {c} | {100 * frac:.1f} | {100 * top1:.2f} | {cpu:.0f} |", flush=True)
    out = {"dataset": ds.name, "train_images": len(ds.train), "test_images": len(ds.test), "seed": args.seed,
           "epochs": args.epochs, "host": host_info(), "rows": rows}
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
