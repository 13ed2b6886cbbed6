"""BatchNorm recalibration size: materialise time and test top-1 for fewer calibration images.

A ``recalibrate`` manifold stores its calibration images; every ``materialize`` runs them through
the generated network to re-estimate BN statistics, and on 28x28 images that forward pass, not
the INR, is most of the time. This scores the first N of the stored images, for several N.

    OMP_NUM_THREADS=1 python benchmarks/calibration.py runs/fid/manifold.safetensors --n 32 64 128 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from metaforge.checkpoint import load_manifold
from metaforge.evaluate import accuracy

SIZES = ((1.0, 0), (0.875, 0), (1.0, 1), (0.75, 0), (0.875, 1), (0.625, 0), (0.5, 0), (0.625, 1), (0.375, 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifold")
    ap.add_argument("--n", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--repeats", type=int, default=5, help="timed materialise calls per config and N")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    m = load_manifold(args.manifold)
    ds = m.dataset()
    stored = m.calibration
    sp = m.space
    configs = [sp.scaled(f, tuple(d - k for d in sp.max_depths)) for f, k in SIZES]
    rows = []
    for n in args.n:
        m.calibration = stored[:n]
        row = {"n": n, "top1": {}, "ms": {}}
        for c in configs:
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                net = m.materialize(c)
                times.append(1000 * (time.perf_counter() - t))
            row["ms"][str(c)] = round(statistics.median(times), 1)
            row["top1"][str(c)] = round(accuracy(net, ds.test, ds.norm), 4)
        row["mean_top1"] = round(statistics.fmean(row["top1"].values()), 4)
        row["median_ms"] = round(statistics.median(row["ms"].values()), 1)
        rows.append(row)
        print(f"N={n:>4}: mean test top-1 {100 * row['mean_top1']:.2f}, median materialise {row['median_ms']} ms; "
              + " ".join(f"{100 * v:.2f}" for v in row["top1"].values()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"manifold": args.manifold, "configs": [str(c) for c in configs], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
