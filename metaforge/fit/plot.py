"""The fit's front as a picture: accuracy against latency, the budget lines and the pick."""

from __future__ import annotations

from pathlib import Path

from metaforge.fit import FitResult
from metaforge.io import atomic_write


def plot(r: FitResult, path: str | Path) -> Path:
    """Accuracy against latency: the front, the budget lines and the pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    front, line, best = r.pareto, [], -1.0
    for c in front:  # sorted by latency: the accuracy-latency front is the running best
        if c.accuracy > best:
            line.append(c)
            best = c.accuracy
    meas = [c for c in front if c.accuracy_source != "predicted"]
    pred = [c for c in front if c.accuracy_source == "predicted"]
    images = next((c.accuracy_images for c in meas if c.accuracy_images), None)
    ax.plot([c.latency_ms for c in meas], [c.accuracy for c in meas], "o", ms=3, color="tab:blue", alpha=0.35,
            label=f"front, accuracy measured{f' on {images} val images' if images else ''}")
    if pred:
        ax.errorbar([c.latency_ms for c in pred], [c.accuracy for c in pred], yerr=[c.accuracy_sigma or 0.0 for c in pred],
                    fmt="o", ms=3, mfc="none", color="tab:green", alpha=0.5, elinewidth=0.8,
                    label="front, accuracy predicted (± sigma)")
    ax.plot([c.latency_ms for c in line], [c.accuracy for c in line], "-", lw=1, color="tab:blue", label="accuracy-latency front")
    if r.budget.latency_ms:
        ax.axvline(r.budget.latency_ms, color="tab:red", ls="--", label=f"latency budget ({r.budget.latency_stat})")
    if r.budget.accuracy_floor > 0:
        ax.axhline(r.budget.accuracy_floor, color="tab:gray", ls=":", label="accuracy floor")
    if r.pick:
        label = (f"pick {r.pick.config} ({r.pick.latency_source} latency, {r.pick.accuracy_source} accuracy)" if r.feasible
                 else f"nearest {r.pick.config}")
        ax.plot([r.pick.latency_ms], [r.pick.accuracy], "*", ms=14, color="tab:orange", label=label)
    src = sorted({c.latency_source for c in front})
    ax.set_xlabel(f"latency {r.budget.latency_stat} (ms, {'/'.join(src)})")
    ax.set_ylabel("validation top-1")
    ax.set_title(f"{Path(r.manifold).name} on {r.profile.name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=120)

    try:
        return atomic_write(path, save)
    finally:
        plt.close(fig)
