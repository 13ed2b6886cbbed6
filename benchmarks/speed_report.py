"""Markdown tables of a ``benchmarks/speed.py`` result (printed at the end of a run, or alone).

    python benchmarks/speed_report.py runs/speed/speed.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def tables(r: dict) -> str:
    out = ["| config | K | materialise, wall ms (median) | CPU ms (median) |", "|---|---|---|---|"]
    out += [f"| {m['config']} | {m['k']} | {m['wall_ms_median']} | {m['cpu_ms_median']} |" for m in r["materialise"]]
    c = r["checkpoint"]
    out += ["", "| bytes | value | ratio to the full network's fp32 weights |", "|---|---|---|",
            f"| full network, fp32 weights ({c['network_params']:,} params) | {c['network_fp32_bytes']:,} | 1.000 |",
            f"| manifold file ({c['inr_params']:,} INR params, of which {c['weight_grid_params']:,} weight grid) | "
            f"{c['manifold_file_bytes']:,} | {c['ratio_vs_fp32_weights']} |",
            f"| of which calibration images | {c['calibration_bytes']:,} | {c['calibration_bytes'] / c['network_fp32_bytes']:.3f} |",
            f"| manifold with fp16 INR tensors (projected) | {c['fp16_projected_bytes']:,} | {c['fp16_projected_ratio']} |"]
    if "train_step" in r:
        t = r["train_step"]
        out += ["", f"| one training step, batch {t['batch']} | plain full-size net | manifold (mean over sampled sizes) | ratio | manifold full-size step | ratio |",
                "|---|---|---|---|---|---|"]
        for k in ("cpu", "wall"):
            out.append(f"| {k} ms | {t[f'{k}_plain_ms']:.1f} | {t[f'{k}_manifold_ms']:.1f} | {t[f'{k}_ratio']:.2f} | "
                       f"{t[f'{k}_manifold_full_size_ms']:.1f} | {t[f'{k}_ratio_full_size']:.2f} |")
    out += ["", "| config | FLOPs % | b1 CPU ms materialised / dense | ratio | b1 time % of full | b32 CPU ms materialised / dense | ratio | b32 time % of full |",
            "|---|---|---|---|---|---|---|---|"]
    for o in r["ort"]:
        out.append(f"| {o['config']} | {100 * o['flops_frac']:.1f} | {o['b1_cpu_materialised_ms']:.3f} / {o['b1_cpu_dense_ms']:.3f} | "
                   f"{o['b1_cpu_ratio']:.3f} | {100 * o['b1_cpu_time_frac']:.0f} | {o['b32_cpu_materialised_ms']:.2f} / "
                   f"{o['b32_cpu_dense_ms']:.2f} | {o['b32_cpu_ratio']:.3f} | {100 * o['b32_cpu_time_frac']:.0f} |")
    if "fp16" in r:
        out += ["", "| config | test top-1, fp32 INR | INR rounded to fp16 |", "|---|---|---|"]
        out += [f"| {f['config']} | {100 * f['top1_fp32']:.2f} | {100 * f['top1_fp16_inr']:.2f} |" for f in r["fp16"]]
    if "fit" in r:
        f = r["fit"]
        out += ["", f"`fit` host-cpu: {f['cold_s']} s with an empty accuracy cache (pick {f['cold_pick']}), "
                f"{f['warm_s']} s with a warm one"]
    if "export" in r:
        out += ["", "| target | export s | export + runtime check s | passed | artifact bytes |", "|---|---|---|---|---|"]
        for e in r["export"]:
            if "error" in e:
                out.append(f"| {e['target']} | error: {e['error']} | {e['total_s']} | — | — |")
            else:
                done = "yes" if e["passed"] and e["complete"] else ("yes (engine not built: no GPU)" if e["passed"] else "no")
                out.append(f"| {e['target']} | {e['export_s']} | {e['total_s']} | {done} | {e['bytes']:,} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(tables(json.loads(Path(sys.argv[1]).read_text())))
