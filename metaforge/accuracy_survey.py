"""Surveying a manifold for its accuracy model: which configs to measure, and measuring them.

Why apart from :mod:`metaforge.accuracy_model`: the model is read wherever a manifold is (fit, info,
checkpoint), while the survey materialises and evaluates networks, which only ``train`` and
``attach_accuracy_model`` do. The design and its reasons are in that module's docstring.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metaforge.accuracy_model import AccuracyModel, AccuracyModelConfig, AccuracyRecord, sklearn_missing
from metaforge.errors import InputError
from metaforge.progress import Progress
from metaforge.space import ArchConfig, ArchSpace

if TYPE_CHECKING:
    from metaforge.data import Normalization, Split
    from metaforge.manifold import Manifold


def plan_configs(space: ArchSpace, cfg: AccuracyModelConfig = AccuracyModelConfig()) -> list[ArchConfig]:
    """Smallest and full, then Sobol points with a uniform scaling after every third; no config twice."""
    from scipy.stats import qmc

    from metaforge.fit.search import anchors

    lo = space.min_widths + space.min_depths
    hi = space.max_widths + space.max_depths
    n = space.num_stages
    sobol = qmc.Sobol(d=len(lo), scramble=True, seed=cfg.seed)
    points: list[ArchConfig] = []
    corners = [space.smallest, space.full]
    for _ in range(8):  # bounded: a small space may run out of new configs
        for u in sobol.random(max(2, cfg.points)):
            genes = tuple(a + min(b - a, int(x * (b - a + 1))) for x, a, b in zip(u, lo, hi))
            c = ArchConfig(genes[:n], genes[n:])
            if c not in points and c not in corners and len(points) < cfg.points:
                points.append(c)
        if len(points) >= cfg.points:
            break
    extra = [a for a in anchors(space) if a not in corners and a not in points]
    plan = list(corners)
    for i, c in enumerate(points):
        plan.append(c)
        if i % 3 == 2 and extra:
            plan.append(extra.pop(0))
    return plan + extra


def measure_accuracy_model(manifold: Manifold, split: Split, norm: Normalization, *, train_seconds: float | None = None,
                           cfg: AccuracyModelConfig = AccuracyModelConfig(), device: Any = "cpu",
                           progress: Progress | None = None) -> AccuracyRecord | None:
    """Measure ``split`` top-1 at :func:`plan_configs` (until ``cfg.time_share`` of ``train_seconds`` is
    spent, never below ``cfg.min_points``; every planned config when None), fit the model and return
    its record; None (said in one line) without scikit-learn.

    ``train`` calls it at its end; it can equally attach a record to a manifold trained before there
    was one (:func:`attach_accuracy_model`).
    """
    rep = progress or Progress()
    time_budget_s = cfg.time_share * train_seconds if train_seconds else None
    if (why := sklearn_missing()) is not None:
        rep.log(f"no accuracy model stored: {why}; fit will evaluate candidates one by one")
        return None
    from metaforge.evaluate import accuracy

    start = time.monotonic()
    plan = plan_configs(manifold.space, cfg)
    configs: list[ArchConfig] = []
    accs: list[float] = []
    rep.phase(f"accuracy model ({len(split)} val images per config)", len(plan))
    for c in plan:
        spent = time.monotonic() - start
        if time_budget_s is not None and len(configs) >= cfg.min_points and spent * (1 + 1 / len(configs)) > time_budget_s:
            break  # the next one would take the measurement past its share
        accs.append(accuracy(manifold.materialize(c), split, norm, device=device))
        configs.append(c)
        rep.advance(1)
    model = AccuracyModel.fitted(manifold.space, configs, accs, len(split), seed=cfg.seed, restarts=cfg.restarts)
    mae, rmse, within = model.leave_one_out()
    record = AccuracyRecord(tuple(configs), tuple(accs), len(split), model.theta, mae, rmse, within,
                            round(time.monotonic() - start, 2), len(plan),
                            None if time_budget_s is None else round(time_budget_s, 2))
    rep.log(record.describe())
    return record


def attach_accuracy_model(src: str | Path, dst: str | Path, *, bounded: bool = True,
                          cfg: AccuracyModelConfig = AccuracyModelConfig(), progress: Progress | None = None) -> AccuracyRecord:
    """Write a copy of the manifold ``src`` to ``dst`` with an accuracy record measured now.

    For manifolds trained before the record existed: the same measurement as at the end of ``train``,
    bounded (``bounded``) by the time share of the training wall time the manifold recorded.
    """
    from metaforge.checkpoint import load_manifold, save_manifold

    m = load_manifold(src)
    tc = m.info.train_config
    wall = tc.get("wall_time_s") - tc.get("evaluation_wall_s", 0.0) if bounded and tc.get("wall_time_s") else None
    ds = m.dataset()
    record = measure_accuracy_model(m, ds.val, ds.norm, train_seconds=wall, cfg=cfg, progress=progress)
    if record is None:
        raise InputError(f"cannot attach an accuracy model: {sklearn_missing()}")
    m.accuracy_record = record
    save_manifold(m, dst)
    return record
