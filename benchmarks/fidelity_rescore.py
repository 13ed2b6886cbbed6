"""Re-score a finished fidelity run with another number of BatchNorm calibration images.

Why this is exact rather than an estimate: the calibration images are used only after training (each
materialised size re-estimates its BatchNorm statistics on them), and ``train`` draws them as the
first N of one seeded permutation of the training split, so a manifold trained with N images holds
the same INR as one trained with 256 and the same first 256 images. Pruning + fine-tune ends with the
same recalibration, and its fine-tune runs BatchNorm on batch statistics, so its weights do not
depend on the images either: re-calibrating its cached network gives what a rerun would.

    python benchmarks/fidelity_rescore.py runs/r3fw2a-s0 --calibration 4096 --json docs/bench/X.json
    python benchmarks/fidelity_rescore.py runs/nest-s0 --calibration 4096 --prune-only --json ...

Prints the 9-size table before and after and writes the run's fidelity JSON with the new scores
(``calibration_images`` and ``rescored_from`` added; timings unchanged: training is the same). Run it
with the thread count the run was scored with (the benchmarks: ``OMP_NUM_THREADS=1``): the recalibration
pass's sums change order with the threads, and a score can move by a test image.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from fidelity import slug  # noqa: E402

from metaforge.checkpoint import load_manifold  # noqa: E402
from metaforge.data import load_dataset  # noqa: E402
from metaforge.evaluate import accuracy, calibration_images, recalibrate_batchnorm  # noqa: E402
from metaforge.io import atomic_write_text  # noqa: E402
from metaforge.model_io import load_model  # noqa: E402
from metaforge.manifold import as_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path, help="a fidelity work folder (fidelity.json, manifold.safetensors, prune/)")
    ap.add_argument("--calibration", type=int, required=True, help="calibration images to re-score with")
    ap.add_argument("--prune-only", action="store_true", help="re-score only the pruned + fine-tuned networks")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    doc = json.loads((args.work / "fidelity.json").read_text())
    manifold = load_manifold(args.work / "manifold.safetensors")
    tc = manifold.info.train_config
    ds = load_dataset(tc["dataset"], tc.get("data_dir"), seed=tc["seed"], limit=tc.get("limit"))
    if len(ds.test) != doc["test_images"]:
        raise SystemExit(f"{args.work} was scored on {doc['test_images']} test images; this re-scores all {len(ds.test)}")
    images = calibration_images(ds.train.images, tc["seed"], args.calibration)
    stored = manifold.calibration
    if not torch.equal(images[: len(stored)], stored[: len(images)]):
        raise SystemExit(f"{args.work}: the stored calibration images are not the first of the seeded draw; cannot re-score")
    manifold.calibration = images
    out = copy.deepcopy(doc)
    keys = ("prune_ft",) if args.prune_only else ("manifold", "prune_ft")
    print(f"{args.work}: {len(stored)} -> {len(images)} calibration images, test top-1 (%)")
    print("| config | " + " | ".join(f"{k} {len(stored)} | {k} {len(images)}" for k in keys) + " |")
    for row, new in zip(doc["rows"], out["rows"]):
        config = as_config(row["config"])
        cells = []
        for key in keys:
            if key == "manifold":
                net = manifold.materialize(config)
            else:
                path = args.work / "prune" / slug(config) / "finetuned.safetensors"
                if key not in row["top1"] or not path.is_file():
                    continue
                net = recalibrate_batchnorm(load_model(path)[0], ds.norm.apply(images))
            new["top1"][key] = round(accuracy(net, ds.test, ds.norm), 4)
            cells += [f"{100 * row['top1'][key]:.2f}", f"{100 * new['top1'][key]:.2f}"]
        print(f"| {row['config']} | " + " | ".join(cells) + " |", flush=True)
        if "manifold" in keys and row.get("k") == 1 and "manifold_k1" in row["top1"]:
            new["top1"]["manifold_k1"] = new["top1"]["manifold"]
        new["top1"].pop("prune_recal", None)  # calibration-dependent and not re-scored: not carried over stale
    out.update(calibration_images=len(images), rescored_from=str(args.work / "fidelity.json"))
    atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
