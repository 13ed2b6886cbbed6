"""K-sample weight averaging: test accuracy of materialised sizes for several K (one manifold).

    python benchmarks/samples_k.py runs/d20.safetensors --k 1 2 4 8 --json runs/samples_k.json
"""

from __future__ import annotations

import argparse
import json
import time

from metaforge import load_manifold
from metaforge.evaluate import accuracy
from metaforge.train.sampling import evaluation_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifold")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    m = load_manifold(args.manifold)
    ds = m.dataset()
    rows = []
    for config in evaluation_grid(m.space):
        row = {"config": str(config), "seen": m.is_seen(config)}
        for k in args.k:
            t = time.perf_counter()
            net = m.materialize(config, samples=k)
            row[f"ms_k{k}"] = round(1000 * (time.perf_counter() - t), 1)
            row[f"top1_k{k}"] = round(accuracy(net, ds.test, ds.norm), 4)
        rows.append(row)
        print("  ".join(f"{v}" for v in row.values()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"manifold": args.manifold, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
