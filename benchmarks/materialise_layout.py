"""Materialisation before/after the channels-last BatchNorm recalibration, in one process.

    OMP_NUM_THREADS=1 python benchmarks/materialise_layout.py MANIFOLD --threads 1 --json OUT.json

For each of speed.py's sizes, materialises with the previous recalibration (default layout) and
the library's (channels-last), alternating, 8 times each; prints median CPU and wall ms, the
largest logit difference between the two networks and both test top-1, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import metaforge.manifold as manifold_module
from metaforge.checkpoint import load_manifold
from metaforge.data import load_dataset
from metaforge.evaluate import accuracy
from metaforge.io import atomic_write_text
from speed import SIZES


@torch.no_grad()
def default_layout_recalibration(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """The recalibration as it was before the change: the same statistics, default memory layout."""
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    for i in range(0, images.shape[0], batch_size):
        model(images[i : i + batch_size])
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifold", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = load_manifold(args.manifold)
    ds = load_dataset(m.info.dataset, m.info.train_config.get("data_dir"), seed=m.info.train_config.get("seed", 0))
    variants = {"before": default_layout_recalibration, "after": manifold_module.recalibrate_batchnorm}
    x = ds.norm.apply(ds.test.images[:512])
    rows = []
    print("| config | K | CPU ms before | CPU ms after | wall ms before | wall ms after | max logit diff | top-1 before | top-1 after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f, k in SIZES:
        c = m.space.scaled(f, tuple(max(lo, d - k) for d, lo in zip(m.space.max_depths, m.space.min_depths)))
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        nets = {}
        for rep in range(args.repeats + 1):  # the first round warms up
            for name, fn in variants.items():
                manifold_module.recalibrate_batchnorm = fn
                cpu, wall = time.process_time(), time.perf_counter()
                nets[name] = m.materialize(c)
                if rep:
                    times[name].append((1000 * (time.process_time() - cpu), 1000 * (time.perf_counter() - wall)))
        manifold_module.recalibrate_batchnorm = variants["after"]
        row = {"config": str(c), "k": m.default_samples(c),
               **{f"cpu_ms_{n}": round(statistics.median(t[0] for t in v), 1) for n, v in times.items()},
               **{f"wall_ms_{n}": round(statistics.median(t[1] for t in v), 1) for n, v in times.items()},
               "max_abs_logit_diff": float((nets["before"](x) - nets["after"](x)).abs().max()),
               **{f"top1_{n}": accuracy(net, ds.test, ds.norm) for n, net in nets.items()}}
        rows.append(row)
        print(f"| {c} | {row['k']} | {row['cpu_ms_before']} | {row['cpu_ms_after']} | {row['wall_ms_before']} | "
              f"{row['wall_ms_after']} | {row['max_abs_logit_diff']:.1e} | {100 * row['top1_before']:.2f} | {100 * row['top1_after']:.2f} |",
              flush=True)
    atomic_write_text(args.json, json.dumps({"manifold": str(args.manifold), "threads": args.threads, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
