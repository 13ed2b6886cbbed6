"""How well the per-layer table predicts ONNX Runtime latency and memory on this machine.

1. ``metaforge profile measure host-cpu --manifold M --out TABLE`` measures the table (skipped
   with ``--table``);
2. N held-out configs (random, seeded, none of the table's calibration networks) are exported and
   timed together in one ONNX Runtime process, interleaved as the table's layers are (p50 and p90
   latency), and each one's peak memory is read in a process of its own;
3. predicted (table) and measured are compared: the share within +-10% (latency p50) and +-15%
   (memory), printed as a table and written as JSON;
4. with ``--fit-runs K``: ``fit --measure`` at K latency budgets spread over the space; each pick's
   measured p50 must be within its budget, and the (up to 3) cached configs that are more accurate
   and predicted within 1.5x the budget are measured to check that none of them fits.

    python benchmarks/latency_prediction.py --manifold runs/d20.safetensors --fit-runs 10 --out latency_prediction.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metaforge.checkpoint import read_header
from metaforge.fit import shapes
from metaforge.fit.latency import measure_modules, measure_one
from metaforge.fit.memory import predict_memory
from metaforge.fit.table import LatencyTable, random_configs
from metaforge.nets import ResNet
from metaforge.profiles import load_profile
from metaforge.space import ArchConfig, ArchSpace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifold", required=True, type=Path)
    ap.add_argument("--profile", default="host-cpu")
    ap.add_argument("--table", type=Path, help="an existing table (else one is measured)")
    ap.add_argument("-n", type=int, default=50, help="held-out configs")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", type=Path, default=Path("latency_prediction.json"))
    ap.add_argument("--fit-runs", type=int, default=0, help="fit --measure at this many budgets")
    ap.add_argument("--max-evals", type=int, default=150)
    ap.add_argument("--alone", type=int, default=10,
                    help="re-measure this many held-out configs alone, each in a process of its own (as fit --measure does)")
    args = ap.parse_args()

    profile = load_profile(args.profile)
    space = ArchSpace.from_dict(json.loads(read_header(args.manifold)["space"]))
    table_path, table_seconds = args.table, None
    if table_path is None:
        table_path = Path(tempfile.mkdtemp(prefix="metaforge-bench-")) / f"{profile.name}.table.json"
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "metaforge", "profile", "measure", args.profile, "--manifold",
                        str(args.manifold), "--out", str(table_path)], check=True)
        table_seconds = time.monotonic() - t0
    table = LatencyTable.load(table_path)

    calibration = {ArchConfig.parse(c) for c in table.calibration_configs}
    held_out = random_configs(space, args.n, args.seed, exclude=calibration)
    shape = space.input_shape
    rows = []
    t0 = time.monotonic()
    measured = measure_modules([ResNet(c, space.in_channels, space.num_classes) for c in held_out], [shape] * len(held_out),
                               profile, memory=True)
    measure_seconds = time.monotonic() - t0
    print(f"{'config':<24} {'meas p50':>9} {'pred p50':>9} {'err':>7}   {'meas MB':>8} {'pred MB':>8} {'err':>7}")
    for c, m in zip(held_out, measured):
        ls = shapes.layers(c, space)
        pred_ms, pred_mb = table.predict_ms(ls, "p50"), predict_memory(ls, profile, table)[0]
        row = {"config": str(c), "measured_p50_ms": m.p50_ms, "measured_p90_ms": m.p90_ms, "predicted_p50_ms": pred_ms,
               "latency_err": pred_ms / m.p50_ms - 1, "measured_peak_mb": m.peak_mb, "predicted_mb": pred_mb,
               "memory_err": pred_mb / m.peak_mb - 1 if m.peak_mb else None, "mflops": 2 * shapes.macs(ls) / 1e6}
        rows.append(row)
        print(f"{str(c):<24} {m.p50_ms:9.4f} {pred_ms:9.4f} {100 * row['latency_err']:+6.1f}%   "
              f"{m.peak_mb or float('nan'):8.2f} {pred_mb:8.2f} {100 * (row['memory_err'] or float('nan')):+6.1f}%", flush=True)

    alone = []
    for r, c in zip(rows[: args.alone], held_out):
        m = measure_one(ResNet(c, space.in_channels, space.num_classes), shape, profile)
        r["alone_p50_ms"] = m.p50_ms
        alone.append(m.p50_ms / r["measured_p50_ms"] - 1)
    lat = [abs(r["latency_err"]) for r in rows]
    mem = [abs(r["memory_err"]) for r in rows if r["memory_err"] is not None]
    summary = {
        "configs": len(rows),
        "latency_within_10pct": sum(e <= 0.10 for e in lat) / len(lat),
        "latency_within_5pct": sum(e <= 0.05 for e in lat) / len(lat),
        "latency_median_abs_err": statistics.median(lat),
        "latency_max_abs_err": max(lat),
        "memory_within_15pct": sum(e <= 0.15 for e in mem) / len(mem) if mem else None,
        "memory_median_abs_err": statistics.median(mem) if mem else None,
        "measured_p50_ms_range": [min(r["measured_p50_ms"] for r in rows), max(r["measured_p50_ms"] for r in rows)],
        "table_entries": len(table.entries),
        "table_seconds": table_seconds,
        "held_out_measure_seconds": measure_seconds,
        "alone_vs_interleaved_max_abs_diff": max(map(abs, alone)) if alone else None,
    }
    doc = {"schema": "metaforge-latency-benchmark/1", "profile": profile.name, "manifold": str(args.manifold),
           "table": str(table_path), "threads": profile.device.threads, "summary": summary, "rows": rows}
    if args.fit_runs:
        doc["fit_runs"] = fit_runs(args, profile, space, table, table_path)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"\nlatency p50 within +-10%: {100 * summary['latency_within_10pct']:.0f}% of {len(rows)} held-out configs "
          f"(+-5%: {100 * summary['latency_within_5pct']:.0f}%; median |err| {100 * summary['latency_median_abs_err']:.1f}%, "
          f"max {100 * summary['latency_max_abs_err']:.1f}%)")
    if alone:
        print(f"{len(alone)} configs re-measured alone in their own process: p50 within "
              f"{100 * min(alone):+.1f}% .. {100 * max(alone):+.1f}% of the interleaved measurement")
    if mem:
        print(f"memory within +-15%: {100 * summary['memory_within_15pct']:.0f}% (median |err| "
              f"{100 * summary['memory_median_abs_err']:.1f}%)")
    print(f"wrote {args.out}")


def fit_runs(args, profile, space, table, table_path) -> list[dict]:
    from metaforge import load_manifold
    from metaforge.fit import InfeasibleBudget, fit
    from metaforge.fit.search import AccuracyCache

    lo = table.predict_ms(shapes.layers(space.smallest, space), "p50") * 1.2
    hi = table.predict_ms(shapes.layers(space.full, space), "p50") * 0.9
    budgets = [lo * (hi / lo) ** (i / max(1, args.fit_runs - 1)) for i in range(args.fit_runs)]
    manifold = load_manifold(args.manifold)
    shape = space.input_shape
    out = []
    print(f"\n{'budget ms':>9}  {'pick':<24} {'val top-1':>9} {'pred':>8} {'meas':>8} {'walk':>4}  better-but-fits")
    for b in budgets:
        t0 = time.monotonic()
        try:
            r = fit(args.manifold, profile, latency_ms=b, table=table_path, measure=True, max_evals=args.max_evals, time_cap_s=120)
        except InfeasibleBudget as e:
            print(f"{b:9.4f}  infeasible: {e}")
            out.append({"budget_ms": b, "feasible": False, "message": str(e)})
            continue
        pick, seconds = r.pick, time.monotonic() - t0
        pred = table.predict_ms(shapes.layers(pick.config, space), "p50")
        better = sorted(((acc, c) for c, acc in AccuracyCache(args.manifold).values.items() if acc > pick.accuracy), reverse=True)
        near = [c for _, c in better if table.predict_ms(shapes.layers(ArchConfig.parse(c), space), "p50") <= 1.5 * b][:3]
        fits = []
        for c in near:
            m = measure_one(manifold.materialize(c), shape, profile)
            if m.p50_ms <= b:
                fits.append({"config": c, "measured_p50_ms": m.p50_ms})
        row = {"budget_ms": b, "feasible": True, "pick": str(pick.config), "accuracy": pick.accuracy, "predicted_ms": pred,
               "measured_ms": pick.latency_ms, "within": pick.latency_ms <= b, "walk": len(r.measured),
               "checked_more_accurate": near, "more_accurate_that_fit": fits, "seconds": seconds}
        out.append(row)
        print(f"{b:9.4f}  {str(pick.config):<24} {pick.accuracy:9.4f} {pred:8.4f} {pick.latency_ms:8.4f} {len(r.measured):4d}  "
              f"{len(fits)}/{len(near)}", flush=True)
    ok = [r for r in out if r["feasible"]]
    print(f"fit --measure: {sum(r['within'] for r in ok)}/{len(ok)} picks within budget when measured; "
          f"{sum(bool(r['more_accurate_that_fit']) for r in ok)} runs where a more accurate config measured within budget")
    return out


if __name__ == "__main__":
    main()
