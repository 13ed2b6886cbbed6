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
    ax.plot([c.latency_ms for c in front], [c.accuracy for c in front], "o", ms=3, color="tab:blue", alpha=0.35,
            label="front (accuracy, latency, memory)")
    ax.plot([c.latency_ms for c in line], [c.accuracy for c in line], "o-", ms=4, color="tab:blue", label="accuracy-latency front")
    if r.budget.latency_ms:
        ax.axvline(r.budget.latency_ms, color="tab:red", ls="--", label=f"latency budget ({r.budget.latency_stat})")
    if r.budget.accuracy_floor > 0:
        ax.axhline(r.budget.accuracy_floor, color="tab:gray", ls=":", label="accuracy floor")
    if r.pick:
        label = f"pick {r.pick.config} ({r.pick.latency_source})" if r.feasible else f"nearest {r.pick.config}"
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
