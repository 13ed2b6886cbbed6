"""Export parity over random sizes of one manifold (issue 4's acceptance): every config x target is
exported, run in its real runtime and gated against PyTorch by the library's own pipeline
(:func:`metaforge.deploy.job.job_for` + :func:`metaforge.export.pipeline.export_model`, what
``metaforge export --config C --target T`` calls). A benchmark, not a test: it reports and exits 0.

    cd /work/main && OMP_NUM_THREADS=1 .venv/bin/python benchmarks/export_parity.py \\
        --manifold runs/d20.safetensors --out /tmp/export_parity --json runs/export_parity.json

Configs are drawn uniformly (seeded ``torch.Generator``) from the manifold's space: each stage's
width in min..max, then each stage's depth in min..max. One row per config x target; a summary
per target (passed, worst max abs diff; int8: min/mean accuracy ratio, min SQNR). Artifacts and
each export's report.json go to ``OUT/cNN/TARGET/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

from metaforge.checkpoint import load_manifold
from metaforge.deploy.job import job_for
from metaforge.export.pipeline import export_model
from metaforge.space import ArchConfig, ArchSpace
from metaforge.targets import load_target, resolve_target

DEFAULT_TARGETS = ["onnx-fp32", "tflite-fp32", "tflite-int8"]


def random_configs(space: ArchSpace, n: int, seed: int) -> list[ArchConfig]:
    """``n`` configs, every stage width and depth uniform in [min, max] (inclusive)."""
    gen = torch.Generator().manual_seed(seed)

    def draw(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=gen).item())

    configs = []
    for _ in range(n):
        widths = tuple(draw(lo, hi) for lo, hi in zip(space.min_widths, space.max_widths))
        depths = tuple(draw(lo, hi) for lo, hi in zip(space.min_depths, space.max_depths))
        configs.append(space.check(ArchConfig(widths, depths)))
    return configs


def row_from_report(i: int, config: str, target: str, report: dict, report_path: Path, total_s: float) -> dict:
    p, a = report["parity"], report["accuracy"]
    return {
        "index": i, "config": config, "target": target, "passed": bool(report["passed"]),
        "complete": bool(report["complete"]), "error": None,
        "max_abs_diff": p["max_abs_diff"], "sqnr_db": p["sqnr_db"], "top1_agreement": p["top1_agreement"],
        "acc_artifact": a["artifact"], "acc_pytorch": a["reference"], "acc_ratio": a["ratio"],
        "acc_ratio_ci95": a["ratio_ci95"], "flips": a["flips"], "n_samples": report["n_samples"],
        "export_seconds": report["export_seconds"], "total_seconds": round(total_s, 3),
        "size_bytes": report["artifact"]["size_bytes"],
        "failed_checks": [f"{c['name']}: {c['detail']}" for c in report["checks"] if c["status"] == "fail"],
        "not_run_checks": [f"{c['name']}: {c['detail']}" for c in report["checks"] if c["status"] == "not-run"],
        "checks": report["checks"], "report": str(report_path), "tools": report["tools"],
    }


def error_row(i: int, config: str, target: str, err: BaseException, total_s: float) -> dict:
    return {
        "index": i, "config": config, "target": target, "passed": False, "complete": False,
        "error": f"{type(err).__name__}: {err}", "max_abs_diff": None, "sqnr_db": None, "top1_agreement": None,
        "acc_artifact": None, "acc_pytorch": None, "acc_ratio": None, "export_seconds": None,
        "total_seconds": round(total_s, 3), "failed_checks": [], "checks": [],
    }


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


HEADER = (f"{'#':>2}  {'config':<24} {'target':<12} {'pass':<4} {'maxabs':>9} {'SQNR dB':>8} {'top1agr':>7} "
          f"{'acc art':>7} {'acc pt':>7} {'ratio':>7} {'exp s':>6} {'tot s':>6}")


def print_row(r: dict) -> None:
    verdict = "yes" if r["passed"] else ("ERR" if r["error"] else "NO")
    print(f"{r['index']:>2}  {r['config']:<24} {r['target']:<12} {verdict:<4} {fmt(r['max_abs_diff'], '9.3g')} "
          f"{fmt(r['sqnr_db'], '8.1f')} {fmt(r['top1_agreement'], '7.4f')} {fmt(r['acc_artifact'], '7.4f')} "
          f"{fmt(r['acc_pytorch'], '7.4f')} {fmt(r['acc_ratio'], '7.4f')} {fmt(r['export_seconds'], '6.1f')} "
          f"{fmt(r['total_seconds'], '6.1f')}", flush=True)
    for c in r["failed_checks"]:
        print(f"      FAIL {c}", flush=True)
    if r["error"]:
        print(f"      ERROR {r['error']}", flush=True)


def summarize(rows: list[dict], targets: list[str]) -> dict:
    out = {}
    for t in targets:
        rs = [r for r in rows if r["target"] == t]
        ok = [r for r in rs if r["error"] is None]
        s = {
            "configs": len(rs), "passed": sum(r["passed"] for r in rs), "errors": sum(r["error"] is not None for r in rs),
            "worst_max_abs_diff": max((r["max_abs_diff"] for r in ok), default=None),
            "min_sqnr_db": min((r["sqnr_db"] for r in ok), default=None),
            "min_top1_agreement": min((r["top1_agreement"] for r in ok), default=None),
            "failed": [{"config": r["config"], "failed_checks": r["failed_checks"], "error": r["error"]}
                       for r in rs if not r["passed"]],
        }
        ratios = [r["acc_ratio"] for r in ok if r["acc_ratio"] is not None]
        if ratios:
            s["min_acc_ratio"] = min(ratios)
            s["mean_acc_ratio"] = round(statistics.fmean(ratios), 5)
        if ok:
            s["mean_export_seconds"] = round(statistics.fmean(r["export_seconds"] for r in ok), 3)
        out[t] = s
    return out


def print_summary(summary: dict) -> None:
    print("\nsummary")
    for t, s in summary.items():
        line = (f"  {t:<12} passed {s['passed']}/{s['configs']} (errors {s['errors']}); worst max abs diff "
                f"{fmt(s['worst_max_abs_diff'], '.3g')}; min SQNR {fmt(s['min_sqnr_db'], '.1f')} dB; "
                f"min top-1 agreement {fmt(s['min_top1_agreement'], '.4f')}")
        if "int8" in t and "min_acc_ratio" in s:
            line += f"; accuracy ratio min {s['min_acc_ratio']:.4f} mean {s['mean_acc_ratio']:.4f}"
        print(line)
        for f in s["failed"]:
            print(f"      failed {f['config']}: {'; '.join(f['failed_checks']) or f['error']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifold", required=True, type=Path)
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS, help="target names (targets/) or YAML files")
    ap.add_argument("--out", type=Path, required=True, help="folder for artifacts and report.json files")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    t_start = time.perf_counter()
    manifold = load_manifold(args.manifold)
    space = manifold.space
    configs = random_configs(space, args.configs, args.seed)
    targets = {t: resolve_target(load_target(t), None, None) for t in args.targets}  # as `metaforge export --target T`
    print(f"manifold {args.manifold}: space {space.describe()}; {len(configs)} configs (seed {args.seed}); "
          f"targets {', '.join(targets)}", flush=True)
    dupes = len(configs) - len(set(configs))
    if dupes:
        print(f"note: {dupes} duplicate config(s) among the draws", flush=True)
    for name, t in targets.items():
        print(f"  {name}: {t.format} {t.precision}, tolerances {t.tolerances}", flush=True)
    print(HEADER, flush=True)

    rows: list[dict] = []
    for i, cfg in enumerate(configs):
        job = None
        for name, target in targets.items():
            out_dir = args.out / f"c{i:02d}" / Path(name).stem
            t0 = time.perf_counter()
            try:
                if job is None:  # materialise the config and load the data once per config
                    job = job_for(manifold, cfg, target, "config")
                result = export_model(job.model, job.spec, target, out_dir, job.data)
                row = row_from_report(i, str(cfg), name, result.report.to_dict(), result.report_path, time.perf_counter() - t0)
            except Exception as e:  # ExportError and anything unexpected: record and go on
                row = error_row(i, str(cfg), name, e, time.perf_counter() - t0)
                row["traceback"] = traceback.format_exc()
            rows.append(row)
            print_row(row)

    summary = summarize(rows, list(targets))
    wall = time.perf_counter() - t_start
    print_summary(summary)
    print(f"\nwall time {wall:.1f} s")
    if args.json:
        doc = {
            "manifold": str(args.manifold), "space": space.to_dict(), "seed": args.seed,
            "configs": [str(c) for c in configs], "targets": {n: t.to_dict() for n, t in targets.items()},
            "out": str(args.out), "wall_seconds": round(wall, 1), "summary": summary, "rows": rows,
            "command": " ".join(sys.argv),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
