"""How many BatchNorm calibration images: validation top-1 of the 9 fidelity sizes over several manifolds.

Why validation and several manifolds: the count is a default every materialisation uses, so it is
chosen on data the fidelity tables do not report (the validation split, 5,000 images) and over
manifolds of several recipes and seeds, not on one run's test scores. Counts beyond what a manifold
stores are drawn as ``train`` draws them (the first N of one seeded permutation of the training
split), so each count scores the manifold a run with ``--calibration-size N`` would have written.
(``benchmarks/calibration.py`` times materialisation for fewer images than stored, on the test split.)

    OMP_NUM_THREADS=1 python benchmarks/calibration_val.py runs/{r3fw2a,r3fw2b}-s{0,1}/manifold.safetensors \
        --n 256 1024 2048 4096 --json docs/bench/calibration-val.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fidelity import SIZES  # noqa: E402

from metaforge.checkpoint import load_manifold  # noqa: E402
from metaforge.data import load_dataset  # noqa: E402
from metaforge.evaluate import accuracy, calibration_images  # noqa: E402
from metaforge.io import atomic_write_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifolds", nargs="+", type=Path)
    ap.add_argument("--n", type=int, nargs="+", default=[256, 1024, 2048, 4096])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out: dict[str, dict[int, list[float]]] = {}
    for path in args.manifolds:
        m = load_manifold(path)
        tc = m.info.train_config
        ds = load_dataset(tc["dataset"], tc.get("data_dir"), seed=tc["seed"], limit=tc.get("limit"))
        sizes = [m.space.scaled(f, tuple(d - k for d in m.space.max_depths)) for f, k in SIZES]
        stored = m.calibration
        res = {}
        for n in args.n:
            m.calibration = calibration_images(ds.train.images, tc["seed"], n)
            k = min(n, len(stored))
            if not (m.calibration[:k] == stored[:k]).all():
                raise SystemExit(f"{path}: its calibration images are not the seeded draw's first; cannot extend them")
            res[n] = [accuracy(m.materialize(c), ds.val, ds.norm) for c in sizes]
        out[str(path)] = res
        print(path, " | ".join(f"{n}: {100 * statistics.fmean(a):.3f}" for n, a in res.items()), flush=True)
    means = {n: 100 * statistics.fmean(statistics.fmean(r[n]) for r in out.values()) for n in args.n}
    print("mean val top-1 over manifolds and sizes:", " | ".join(f"{n}: {v:.3f}" for n, v in means.items()))
    if args.json:
        atomic_write_text(args.json, json.dumps({"split": "val", "sizes": [f"{f}x width, depth -{k}" for f, k in SIZES],
                                                 "top1": out, "mean": means}, indent=1) + "\n")


if __name__ == "__main__":
    main()
