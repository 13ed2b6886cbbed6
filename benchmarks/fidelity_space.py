"""A fidelity manifold over the whole space: held-out widths and random configs, scored on the test split.

The 9-size table of ``fidelity.py`` is uniform scalings only. This scores (a) the configs whose every
stage takes a width the training never sampled (``progressive.holdout_width_fracs``), beside their
trained neighbours, and (b) random configs spread over 2-100% FLOPs, depth 1 included. Configs
scored in an earlier fidelity shelf with an individually trained network get that score beside theirs.

    python benchmarks/fidelity_space.py runs/e12-s0 --json docs/bench/fidelity-space-s0.json
    python benchmarks/fidelity_space.py runs/nest-s0 --configs "w=4,8,16 d=1,1,1" --individual docs/bench/individual-space-s0.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from metaforge.checkpoint import load_manifold
from metaforge.cost import count_cost
from metaforge.data import Split, load_dataset
from metaforge.evaluate import accuracy
from metaforge.io import atomic_write_text
from metaforge.nets import ResNet
from metaforge.space import ArchConfig
from metaforge.train.config import TrainConfig


def flops_fraction(space, c: ArchConfig) -> float:
    """``c``'s MACs as a share of the full network's."""
    shape = (space.in_channels, space.image_size, space.image_size)
    macs = lambda cfg: count_cost(ResNet(cfg, space.in_channels, space.num_classes), shape).macs  # noqa: E731
    return macs(c) / macs(space.full)


def random_spread(space, n: int, seed: int) -> list[ArchConfig]:
    """``n`` random configs, one per equal slice of log FLOPs from 2% to 100% (rejection sampled)."""
    rng = random.Random(seed)
    edges = [0.02 * (1 / 0.02) ** (i / n) for i in range(n + 1)]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        for _ in range(5000):
            c = ArchConfig(tuple(rng.randint(a, b) for a, b in zip(space.min_widths, space.max_widths)),
                           tuple(rng.randint(a, b) for a, b in zip(space.min_depths, space.max_depths)))
            if lo <= flops_fraction(space, c) < hi:
                out.append(c)
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="a fidelity.py work folder (its manifold.safetensors and setting)")
    ap.add_argument("--random", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--configs", nargs="*", default=[], help='extra configs to score, e.g. "w=4,8,16 d=1,1,1"')
    ap.add_argument("--individual", type=Path, nargs="*", default=[],
                    help="benchmarks/individual.py results: their networks' scores go beside the manifold's, with the gap")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    m = load_manifold(args.work / "manifold.safetensors")
    cfg = TrainConfig.from_dict(json.loads((args.work / "manifold.run" / "config.json").read_text())["train"])
    ds = load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    test: Split = ds.test
    space = m.space
    held = [f for f in cfg.progressive.holdout_width_fracs]
    configs = [("held-out", space.scaled(f, tuple(d - k for d in space.max_depths))) for f in held for k in (0, 1)]
    configs += [("random", c) for c in random_spread(space, args.random, args.seed)]
    configs += [("extra", space.check(ArchConfig.parse(c))) for c in args.configs]
    individual = {r["config"]: r["top1"] for p in args.individual for r in json.loads(p.read_text())["rows"]}
    rows = []
    print("| kind | config | FLOPs % | seen | manifold | individual | gap |\n|---|---|---|---|---|---|---|")
    for kind, c in configs:
        top1 = accuracy(m.materialize(c), test, ds.norm)
        frac = flops_fraction(space, c)
        ind = individual.get(str(c))
        rows.append({"kind": kind, "config": str(c), "flops_frac": round(frac, 4), "seen": m.is_seen(c), "top1": round(top1, 4),
                     **({"individual": ind, "gap": round(100 * (top1 - ind), 2)} if ind is not None else {})})
        paired = f"{100 * ind:.2f} | {100 * (top1 - ind):+.2f}" if ind is not None else "— | —"
        print(f"| {kind} | {c} | {100 * frac:.1f} | {'seen' if m.is_seen(c) else 'unseen'} | {100 * top1:.2f} | {paired} |", flush=True)
    out = {"work": str(args.work), "holdout_width_fracs": held, "test_images": len(test), "rows": rows}
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
