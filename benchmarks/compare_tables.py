"""The accuracy tables stored in several manifolds, side by side (recipe before/after comparisons).

Every ``metaforge train`` run scores the same 12-size grid on the full test split and stores it
in the manifold; this lines those tables up and gives each run's difference to the first.

    python benchmarks/compare_tables.py runs/a.safetensors runs/b.safetensors --names before after
"""

from __future__ import annotations

import argparse
import statistics

from metaforge.checkpoint import load_manifold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifolds", nargs="+")
    ap.add_argument("--names", nargs="*", default=None)
    args = ap.parse_args()
    names = args.names or args.manifolds
    tables = [{r["config"]: r for r in load_manifold(p).info.accuracy} for p in args.manifolds]
    configs = list(tables[0])
    print("| config | FLOPs % | seen | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for c in configs:
        r0 = tables[0][c]
        cells = [f"{100 * t[c]['top1']:.2f}" + ("" if i == 0 else f" ({100 * (t[c]['top1'] - r0['top1']):+.2f})")
                 for i, t in enumerate(tables)]
        print(f"| {c} | {100 * r0['flops_frac']:.1f} | {'seen' if r0['seen'] else 'unseen'} | " + " | ".join(cells) + " |")
    means = [statistics.fmean(t[c]["top1"] for c in configs) for t in tables]
    print("| mean | | | " + " | ".join(f"{100 * m:.2f}" for m in means) + " |")


if __name__ == "__main__":
    main()
