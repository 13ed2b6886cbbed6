"""What storing the INR in float16 costs: file bytes and test top-1 at the 12 table sizes.

Give it a manifold written in float32 (before metaforge stored float16): it compares that file
with the same INR rounded to what ``save_manifold`` now keeps. On a float16 file both sides are
the same by construction.

    python benchmarks/storage_fp16.py runs/f5k.safetensors --json storage_fp16.json
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

from metaforge.checkpoint import load_manifold, round_to_storage, save_manifold
from metaforge.data import load_dataset
from metaforge.evaluate import accuracy
from metaforge.nets import ResNet
from metaforge.train.sampling import evaluation_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifold", type=Path)
    ap.add_argument("--json", type=Path, default=Path("storage_fp16.json"))
    args = ap.parse_args()

    m = load_manifold(args.manifold)
    tc = m.info.train_config
    ds = load_dataset(m.info.dataset, tc.get("data_dir"), seed=tc.get("seed", 0), limit=tc.get("limit"))
    net_bytes = 4 * sum(p.numel() for p in ResNet(m.space.full, m.space.in_channels, m.space.num_classes).parameters())
    rounded = copy.deepcopy(m)
    round_to_storage(rounded.inr)
    out = Path(tempfile.mkdtemp(prefix="metaforge-fp16-")) / "fp16.safetensors"
    save_manifold(rounded, out)
    sizes = {"given_file": args.manifold.stat().st_size, "fp16_file": out.stat().st_size, "network_fp32": net_bytes}
    print(f"bytes: given file {sizes['given_file']:,} ({sizes['given_file'] / net_bytes:.3f}x the network's fp32 weights), "
          f"fp16 file {sizes['fp16_file']:,} ({sizes['fp16_file'] / net_bytes:.3f}x)")
    rows = []
    print(f"{'config':<22} {'given':>7} {'fp16':>7} {'diff pt':>8}")
    for c in evaluation_grid(m.space):
        a, b = accuracy(m.materialize(c), ds.test, ds.norm), accuracy(rounded.materialize(c), ds.test, ds.norm)
        rows.append({"config": str(c), "top1_given": a, "top1_fp16": b})
        print(f"{str(c):<22} {a:7.4f} {b:7.4f} {100 * (b - a):+8.2f}")
    diffs = [r["top1_fp16"] - r["top1_given"] for r in rows]
    print(f"mean {100 * sum(diffs) / len(diffs):+.3f} pt, max |diff| {100 * max(map(abs, diffs)):.2f} pt")
    args.json.write_text(json.dumps({"manifold": str(args.manifold), "bytes": sizes, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
