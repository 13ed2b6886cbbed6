"""Tables and the accuracy-vs-FLOPs plot of ``benchmarks/fidelity.py`` results (also usable alone).

    python benchmarks/fidelity_report.py runs/fid/fidelity.json --plot docs/fidelity.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = (  # key in row["top1"], header
    ("manifold", "manifold"), ("individual", "individual"), ("prune", "L1 prune"),
    ("prune_recal", "prune+BN recal"), ("prune_ft", "prune+FT"), ("neumeta", "NeuMeta-style"),
    ("manifold_k1", "abl K=1"), ("fold", "abl BN fold"), ("no_permute", "abl no permute"),
    ("no_incremental", "abl no incremental"),
)


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}"


def markdown_table(result: dict) -> str:
    cols = [(k, h) for k, h in COLUMNS if any(k in r["top1"] for r in result["rows"])]
    lines = ["| config | params | MFLOPs | FLOPs % | seen | " + " | ".join(h for _, h in cols) + " |",
             "|---|---|---|---|---|" + "---|" * len(cols)]
    for r in result["rows"]:
        seen = "seen" if r["seen"] else ("unseen, K=%d" % r["k"] if r["k"] > 1 else "unseen")
        lines.append(f"| {r['config']} | {r['params']:,} | {r['mflops']:.2f} | {100 * r['flops_frac']:.1f} | {seen} | "
                     + " | ".join(pct(r["top1"].get(k)) for k, _ in cols) + " |")
    return "\n".join(lines)


def neumeta_table(result: dict) -> str:
    lines = ["| config | MFLOPs | FLOPs % | seen by NeuMeta-style | NeuMeta-style | manifold |", "|---|---|---|---|---|---|"]
    for r in result["neumeta_rows"]:
        lines.append(f"| {r['config']} | {r['mflops']:.2f} | {100 * r['flops_frac']:.1f} | {'yes' if r['seen'] else 'no'} | "
                     f"{pct(r['top1']['neumeta'])} | {pct(r['top1']['manifold'])} |")
    return "\n".join(lines)


def gaps(result: dict, a: str, b: str) -> list[float]:
    return [100 * (r["top1"][a] - r["top1"][b]) for r in result["rows"] if a in r["top1"] and b in r["top1"]]


def print_tables(result: dict) -> None:
    print(f"\n{result['dataset']}, {result['train_images']} train images, test {result['test_images']}; "
          f"base network {pct(result['base_top1'])}%")
    print(markdown_table(result))
    if result["neumeta_rows"]:
        print("\n" + neumeta_table(result))
    for other in ("individual", "prune_ft", "prune_recal"):
        g = gaps(result, "manifold", other)
        if g:
            print(f"manifold - {other}: mean {sum(g) / len(g):+.2f} points, min {min(g):+.2f}, max {max(g):+.2f}")
    c = result.get("compute", {})
    if "manifold_units" in c:
        print(f"compute (user CPU-s; a unit is one full-size network trained alone, {c['unit_cpu_s']:.0f} CPU-s in this run): "
              f"manifold {c['manifold_cpu_s']:.0f} CPU-s = {c['manifold_units']:.2f} units"
              + (f"; shelf {c['shelf_units']:.2f} units ({c['shelf_cpu_s']:.0f} CPU-s in its own run) -> "
                 f"manifold/shelf {c['manifold_vs_shelf']:.2f}" if "manifold_vs_shelf" in c else "")
              + (f"; prune+FT {c['prune_ft_units']:.2f} units" if "prune_ft_units" in c else ""))
    if "manifold_training_units" in c:
        print(f"  of the manifold's, {c['manifold_eval_cpu_s']:.0f} CPU-s evaluated after training (the size table, the accuracy "
              f"survey): training alone {c['manifold_training_units']:.2f} units"
              + (f" -> manifold/shelf {c['manifold_training_vs_shelf']:.3f}" if "manifold_training_vs_shelf" in c else ""))
    if "manifold_train_gflops" in c:
        print(f"training FLOPs: manifold {c['manifold_train_gflops']:,.0f} G, shelf {c['shelf_train_gflops']:,.0f} G "
              f"({c['manifold_vs_shelf_flops']:.2f}x; a sandwich step {c['phase_step_vs_full']:.2f}x a full-size step)")
    print(f"manifold: {result['manifold_params']:,} parameters, {result['manifold_file_bytes']:,} bytes on disk; "
          f"base network {result['base_params']:,} parameters, {result['base_fp32_bytes']:,} bytes fp32")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=90)
    styles = {"manifold": ("C0", "o", "manifold (one checkpoint)"), "individual": ("C1", "s", "trained individually"),
              "prune_recal": ("C2", "v", "L1 prune + BN recal"), "prune_ft": ("C3", "^", "L1 prune + fine-tune")}
    for key, (color, marker, label) in styles.items():
        pts = sorted((r["flops_frac"], r["top1"][key], r["seen"]) for r in result["rows"] if key in r["top1"])
        if not pts:
            continue
        ax.plot([100 * p[0] for p in pts], [100 * p[1] for p in pts], color=color, lw=1, alpha=0.6)
        for f, a, seen in pts:
            ax.plot(100 * f, 100 * a, marker=marker, color=color, mfc=color if seen or key != "manifold" else "white")
        ax.plot([], [], color=color, marker=marker, label=label)
    if result["neumeta_rows"]:
        pts = sorted((r["flops_frac"], r["top1"]["neumeta"]) for r in result["neumeta_rows"])
        ax.plot([100 * p[0] for p in pts], [100 * p[1] for p in pts], color="C4", marker="D", lw=1, label="NeuMeta-style (last stage)")
    ax.axhline(100 * result["base_top1"], color="grey", ls=":", lw=1, label="base network (full size)")
    ax.set_xlabel("whole-network FLOPs, % of full")
    ax.set_ylabel("test top-1, %")
    ax.set_title(f"{result['dataset']} ResNet-20 family, {result['train_images']} train images (open: unseen size)", fontsize=9)
    lo = min(100 * v for r in result["rows"] for k, v in r["top1"].items() if k in styles)
    ax.set_ylim(max(0, lo - 3), 100 * max(result["base_top1"], *(v for r in result["rows"] for v in r["top1"].values())) + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result", type=Path)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    result = json.loads(args.result.read_text())
    print_tables(result)
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()
