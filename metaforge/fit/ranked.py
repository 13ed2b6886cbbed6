"""fit with the manifold's accuracy model: rank by prediction, confirm by real evaluation.

Why: a real evaluation costs a materialisation and a pass over the validation split; the model
(:mod:`metaforge.accuracy_model`) predicts any config's accuracy with a standard deviation in
microseconds. The candidates within budget are ranked by prediction; then, one at a time, the
unmeasured candidate predicted best among those whose interval (mean +- z sigma) reaches the best
lower bound is evaluated for real and added to the model (the same kernel, one more point), until
no unmeasured candidate can still be the best or ``max_confirm`` are spent. The pick is then made on
measured accuracy alone (:func:`metaforge.fit.fit`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metaforge.errors import ConfigError, MetaforgeError
from metaforge.progress import Progress
from metaforge.space import ArchConfig, ArchSpace

if TYPE_CHECKING:  # fit imports RankSettings before torch: the search helpers come in with the ranking
    from metaforge.accuracy_model import AccuracyModel
    from metaforge.fit.search import AccuracyCache
    from metaforge.manifold import Manifold

Fits = Callable[[ArchConfig], bool]

RULES = ("mean", "ucb")  # which contender is evaluated next


@dataclass(frozen=True)
class RankSettings:
    """How wide the candidate pool is and how many predictions are confirmed by evaluation."""

    max_confirm: int = 3  # real evaluations at most (each is 1-3 s on a 5,000-image validation split on 2 cores)
    z: float = 1.0  # predictions within z sigma of the best lower bound may be the best
    random_configs: int = 2000  # random configs costed to seed the pool (spaces above enumerate_max)
    enumerate_max: int = 2000  # smaller spaces: every config is costed
    refine_rounds: int = 4  # rounds of neighbours of the predicted best (hill-climbing to the budget's edge)
    refine_top: int = 16
    rule: str = "mean"  # which contender is evaluated next: the best predicted "mean", or the best upper bound "ucb"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"unknown ranking rule {self.rule!r}; choose one of: {', '.join(RULES)}")


def candidate_pool(space: ArchSpace, fits: Fits, model: AccuracyModel, known: list[ArchConfig], seed: int,
                   s: RankSettings) -> list[ArchConfig]:
    """Configs within budget: every one of a small space; else random ones, the anchors, the known
    ones, and a few rounds of neighbours of the predicted best (the best sit at the budget's edge)."""
    from metaforge.fit.search import _Genes, anchors, enumerate_space, space_size

    if space_size(space) <= s.enumerate_max:
        return [c for c in enumerate_space(space) if fits(c)]
    genes = _Genes(space, random.Random(seed))
    seeds = dict.fromkeys(anchors(space) + [c for c in known] + [genes.random() for _ in range(s.random_configs)])
    pool = [c for c in seeds if fits(c)]
    seen = set(seeds)
    lo, hi = genes.lo, genes.hi
    for _ in range(s.refine_rounds):
        if not pool:
            break
        mean, _ = model.predict(pool)
        top = [pool[i] for i in sorted(range(len(pool)), key=lambda i: -mean[i])[: s.refine_top]]
        new = []
        for c in top:
            g = c.widths + c.depths
            for i, (a, b) in enumerate(zip(lo, hi)):
                for step in dict.fromkeys((1, max(1, round(0.1 * (b - a))))):
                    for v in (g[i] - step, g[i] + step):
                        if a <= v <= b:
                            n = genes.config(g[:i] + (v,) + g[i + 1:])
                            if n not in seen:
                                seen.add(n)
                                if fits(n):
                                    new.append(n)
        if not new:
            break
        pool += new
    return pool


def confirm(pool: list[ArchConfig], fits: Fits, model: AccuracyModel, measured: dict[ArchConfig, float],
            evaluate: Callable[[ArchConfig], float], s: RankSettings, deadline: float, rep: Progress) -> tuple[AccuracyModel, int]:
    """Evaluate, one at a time, the candidates within ``fits`` that may still be the best; ``measured``
    gains them. Returns the model conditioned on every measurement, and how many were evaluated."""
    done = 0
    inb = [c for c in dict.fromkeys(pool + list(measured)) if fits(c)]
    rep.phase("confirming the predicted best by evaluation", s.max_confirm)
    while done < s.max_confirm and time.monotonic() < deadline:
        model = model.with_points(measured)
        todo = [c for c in inb if c not in measured]
        if not todo:
            break
        mean, std = model.predict(todo)
        lower = max([measured[c] for c in inb if c in measured] + [float(m - s.z * d) for m, d in zip(mean, std)])
        reach = mean + s.z * std
        contenders = sorted((i for i in range(len(todo)) if reach[i] >= lower),
                            key=lambda i: (-(reach[i] if s.rule == "ucb" else mean[i]), todo[i]))
        if not contenders:
            break
        c = todo[contenders[0]]
        measured[c] = evaluate(c)
        done += 1
        rep.advance(1)
    return model.with_points(measured), done


def in_space(space: ArchSpace, config: ArchConfig) -> bool:
    """Whether ``config`` is one of ``space``'s (cached accuracies may come from another manifold's space)."""
    try:
        space.check(config)
        return True
    except MetaforgeError:
        return False


def manifold_model(m: Manifold) -> tuple[AccuracyModel | None, str]:
    """The manifold's accuracy model, or None and the one line that says how fit will find accuracy instead."""
    from metaforge.accuracy_model import AccuracyModel, sklearn_missing

    if m.accuracy_record is None:
        return None, ("this manifold has no accuracy model (written before metaforge stored one): fit evaluates "
                      "candidates one by one, as before; retrain it to make fit fast")
    if (why := sklearn_missing()) is not None:
        return None, f"this manifold's accuracy model needs {why}: fit evaluates candidates one by one instead"
    return AccuracyModel.from_record(m.accuracy_record, m.space), ""


def known_accuracies(m: Manifold, cache: AccuracyCache) -> dict[ArchConfig, float]:
    """Val top-1 measured on the whole validation split already (by earlier fits: the cache).

    The accuracy record's points are not among them: measured at training, on whatever validation
    split training had (benchmarks/fidelity.py trains with 1,000 images: ~1 pt of sampling noise),
    they are the model's data, and a pick is made only on measurements on the whole split, so a
    survey point that was lucky is confirmed like any other.
    """
    out = {}
    for key, acc in cache.values.items():
        c = ArchConfig.parse(key)
        if in_space(m.space, c):
            out[c] = acc
    return out
