"""Training compute of the fidelity methods, in CPU-seconds and in units of one full-size network.

Why units: CPU-seconds measured on another day or under another load do not compare (the shelf in
docs/bench took 309 CPU-s for the 18-epoch full-size network; the same network took ~3x that on
a loaded 2-core machine). So every ratio is formed within one run: the shelf's cost over its own
full-size network, and the manifold's cost over this run's base, which is that same network
(same recipe, same epochs) trained here. Training FLOPs are analytic (3x the forward MACs per image).
"""

from __future__ import annotations

from collections.abc import Callable

from metaforge.space import ArchConfig

BACKWARD_FACTOR = 3  # forward + backward ~ 3x the forward pass


def cpu(timings: dict, key: str) -> float | None:
    rec = timings.get(key)
    return rec["user_cpu_s"] if rec and rec.get("done", True) else None


def compute_summary(timings: dict, full: str, progressive: bool, unit_cpu_s: float | None = None) -> dict:
    """CPU-seconds per method and each in units of one full-size network of its own run.

    ``unit_cpu_s``: that network's CPU-s measured elsewhere on this machine, for a run whose base is
    shorter than an individual network (or absent), so cannot be the unit itself.
    """
    ind = {k.split("|", 1)[1]: v["user_cpu_s"] for k, v in timings.items() if k.startswith("individual|")}
    out: dict = {}
    if ind and full in ind:
        out["shelf_cpu_s"] = round(sum(ind.values()), 1)
        out["shelf_units"] = round(sum(ind.values()) / ind[full], 3)
    base = cpu(timings, "base") if progressive else None
    phase = cpu(timings, "manifold")
    unit = unit_cpu_s or (base if base else ind.get(full))
    if phase is not None and unit:
        total = phase + (base or 0.0)
        out.update(manifold_cpu_s=round(total, 1), unit_cpu_s=round(unit, 1), manifold_units=round(total / unit, 3))
        if "shelf_units" in out:
            out["manifold_vs_shelf"] = round(out["manifold_units"] / out["shelf_units"], 3)
        evaluation = timings["manifold"].get("evaluation_user_cpu_s")
        if evaluation is not None:  # training alone: without the size table and the survey that `train` runs after it
            out.update(manifold_eval_cpu_s=evaluation, manifold_training_units=round((total - evaluation) / unit, 3))
            if "shelf_units" in out:
                out["manifold_training_vs_shelf"] = round(out["manifold_training_units"] / out["shelf_units"], 3)
    prune = [v["user_cpu_s"] for k, v in timings.items() if k.startswith("prune|") and v.get("done", True)]
    if len(prune) == sum(k.startswith("prune|") for k in timings) and prune and unit:  # only a finished set
        out["prune_ft_units"] = round((sum(prune) + (base or unit)) / unit, 3)
        if "shelf_units" in out:
            out["prune_ft_vs_shelf"] = round(out["prune_ft_units"] / out["shelf_units"], 3)
    return out


def expected_macs(draw: Callable[[], ArchConfig], macs: Callable[[ArchConfig], int], n: int = 2000) -> float:
    """Mean forward MACs of a sampler's configs (Monte Carlo over ``n`` draws)."""
    return sum(macs(draw()) for _ in range(n)) / n


def training_flops(images: int, epochs: int, step_macs: float) -> float:
    """Training FLOPs of ``epochs`` over ``images`` when one image costs ``step_macs`` forward MACs per step."""
    return 2 * BACKWARD_FACTOR * images * epochs * step_macs
