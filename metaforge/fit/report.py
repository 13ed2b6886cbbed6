"""The fit document (versioned JSON, the input of ``metaforge export --fit``) and the front's plot.

Schema ``metaforge-fit/1``: ``profile``, ``target``, ``batch``, ``manifold``; the pick's ``config``
(``w=.. d=..``, as ``metaforge info`` writes it), ``accuracy`` (validation top-1, see
``accuracy_split``), ``latency_ms`` {``value``, ``stat``, ``source``}, ``memory_mb`` {``value``,
``source``}, ``params``, ``mflops``; ``budget``; ``feasible`` (false: the pick is the nearest config
and ``message`` says why); ``pareto`` and ``measured`` (the --measure walk), lists of entries with the
pick's fields; ``search`` {``method``, ``evaluated``, ``seconds``}; ``latency_table``, the file behind
``table`` latencies (e.g. one that ``metaforge profile ingest`` wrote from a device's measurements) or
null. Sources: latency ``measured`` | ``table`` | ``roofline``, memory ``measured`` | ``table`` | ``analytic``.
"""

from __future__ import annotations

import json
from pathlib import Path

from metaforge.fit import Candidate, FitResult
from metaforge.io import atomic_write, atomic_write_text

SCHEMA = "metaforge-fit/1"


def candidate_dict(c: Candidate, stat: str) -> dict:
    return {
        "config": str(c.config),
        "accuracy": c.accuracy,
        "latency_ms": {"value": c.latency_ms, "stat": stat, "source": c.latency_source},
        "memory_mb": {"value": c.memory_mb, "source": c.memory_source},
        "params": c.params,
        "mflops": c.mflops,
    }


def to_dict(r: FitResult) -> dict:
    """The document: the pick's fields at the top level, then budget, feasibility and the front."""
    stat = r.budget.latency_stat
    b = r.budget
    pick = candidate_dict(r.pick, stat) if r.pick else {"config": None, "accuracy": None, "latency_ms": None,
                                                       "memory_mb": None, "params": None, "mflops": None}
    return {
        "schema": SCHEMA,
        "profile": r.profile.name,
        "target": r.profile.target,
        "batch": r.profile.batch,
        "manifold": r.manifold,
        **pick,
        "accuracy_split": "val",
        "budget": {"latency_ms": b.latency_ms, "latency_stat": b.latency_stat, "memory_mb": b.memory_mb,
                   "accuracy_floor": b.accuracy_floor},
        "feasible": r.feasible,
        "message": r.message,
        "pareto": [candidate_dict(c, stat) for c in r.pareto],
        "measured": [candidate_dict(c, stat) for c in r.measured],
        "search": {"method": r.method, "evaluated": r.evaluated, "seconds": round(r.seconds, 3)},
        "latency_table": r.latency_table,
    }


def write_json(r: FitResult, path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(to_dict(r), indent=2) + "\n")


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
