"""Which configs to evaluate, and their accuracy (cached per manifold and config).

Accuracy is the materialised network's top-1 on the validation split, kept in a JSON cache beside
the manifold (``<manifold>.fitcache.json``, written atomically, tied to the manifold's SHA-256).
When the configs within budget are few (at most the evaluation cap) they are all evaluated;
otherwise the space is searched by a constrained evolutionary search with a
fixed seed, a cap on evaluations and a time cap: it only ever proposes configs that the cost model
says fit the budget, and every loop is bounded.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from metaforge.errors import InputError, MetaforgeError
from metaforge.io import atomic_write_text, file_sha256
from metaforge.manifold import Manifold
from metaforge.progress import Progress
from metaforge.space import ArchConfig, ArchSpace

if TYPE_CHECKING:
    from metaforge.data import Dataset

CACHE_SCHEMA = "metaforge-fitcache/1"


class AccuracyCache:
    """Validation accuracy per config of one manifold file, persisted beside it."""

    def __init__(self, manifold_path: str | Path) -> None:
        self.manifold_path = Path(manifold_path)
        self.path = self.manifold_path.with_name(self.manifold_path.name + ".fitcache.json")
        self.sha256 = file_sha256(self.manifold_path)
        self.values: dict[str, float] = {}
        self.images: int | None = None  # size of the split the values were measured on
        self.dirty = False
        try:
            d = json.loads(self.path.read_text())
            if d.get("schema") == CACHE_SCHEMA and d.get("manifold_sha256") == self.sha256:
                self.values = {str(k): float(v) for k, v in d["accuracy"].items()}
                self.images = int(d["images"]) if d.get("images") else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no cache, or a stale or damaged one: start afresh

    def save(self) -> None:
        if not self.dirty:
            return
        doc = {"schema": CACHE_SCHEMA, "manifold_sha256": self.sha256, "split": "val", "images": self.images,
               "accuracy": self.values}
        try:
            atomic_write_text(self.path, json.dumps(doc, indent=0, sort_keys=True))
            self.dirty = False
        except MetaforgeError:
            pass  # a read-only folder: the cache is an optimisation, not a result


class Evaluator:
    """Accuracy of configs of one manifold on its validation split, through the cache.

    One evaluator can serve several fits of the same manifold (``check`` over several profiles):
    its dataset is loaded once, on first need, and a config measured for one fit is not measured
    again for the next, even where the cache cannot be written beside the manifold.
    """

    def __init__(self, manifold: Manifold, cache: AccuracyCache | None = None) -> None:
        if cache is None and manifold.source is None:
            raise InputError("an evaluator needs a manifold read from a file: its accuracy cache is kept beside it")
        self.manifold = manifold
        self.cache = cache if cache is not None else AccuracyCache(manifold.source)
        self._dataset: Dataset | None = None
        self.computed = 0

    def dataset(self) -> Dataset:
        """The manifold's dataset, loaded once for every evaluation and export that shares this evaluator."""
        if self._dataset is None:
            self._dataset = self.manifold.dataset()
        return self._dataset

    def _split(self):
        val = self.dataset().val
        self.cache.images = len(val)
        return val

    def measure(self, config: ArchConfig) -> float:
        """Val top-1 of ``config``, materialised and evaluated (no cache)."""
        from metaforge.evaluate import accuracy

        return accuracy(self.manifold.materialize(config), self._split(), self.manifold.info.normalization)

    def __call__(self, config: ArchConfig) -> float:
        key = str(config)
        if key not in self.cache.values:
            self.cache.values[key] = self.measure(config)
            self.cache.dirty = True
            self.computed += 1
            if self.computed % 25 == 0:
                self.cache.save()
        return self.cache.values[key]


def space_size(space: ArchSpace) -> int:
    return math.prod(hi - lo + 1 for lo, hi in zip(space.min_widths + space.min_depths, space.max_widths + space.max_depths))


def enumerate_space(space: ArchSpace) -> list[ArchConfig]:
    ranges = [range(lo, hi + 1) for lo, hi in zip(space.min_widths + space.min_depths, space.max_widths + space.max_depths)]
    n = space.num_stages
    return [ArchConfig(v[:n], v[n:]) for v in itertools.product(*ranges)]


def anchors(space: ArchSpace, fractions: int = 6) -> list[ArchConfig]:
    """Uniformly scaled configs at a few depths, small to large: they span the front whatever the budget."""
    depth_sets = {space.min_depths, space.max_depths,
                  tuple((lo + hi) // 2 for lo, hi in zip(space.min_depths, space.max_depths))}
    lo = min(w / m for w, m in zip(space.min_widths, space.max_widths))
    out = []
    for i in range(fractions):
        for d in sorted(depth_sets):
            c = space.scaled(lo + (1 - lo) * i / (fractions - 1), d)
            if c not in out:
                out.append(c)
    return out


class _Genes:
    def __init__(self, space: ArchSpace, rng: random.Random) -> None:
        self.lo = space.min_widths + space.min_depths
        self.hi = space.max_widths + space.max_depths
        self.n, self.rng = space.num_stages, rng

    def config(self, genes: tuple[int, ...]) -> ArchConfig:
        return ArchConfig(tuple(genes[:self.n]), tuple(genes[self.n:]))

    def random(self) -> ArchConfig:
        return self.config(tuple(self.rng.randint(a, b) for a, b in zip(self.lo, self.hi)))

    def mutate(self, c: ArchConfig, p: float = 0.35) -> ArchConfig:
        genes = list(c.widths + c.depths)
        for i, (a, b) in enumerate(zip(self.lo, self.hi)):
            if self.rng.random() < p:
                step = max(1, round((b - a) * 0.2))
                genes[i] = min(b, max(a, genes[i] + self.rng.randint(-step, step)))
        return self.config(tuple(genes))

    def cross(self, x: ArchConfig, y: ArchConfig) -> ArchConfig:
        gx, gy = x.widths + x.depths, y.widths + y.depths
        return self.config(tuple(a if self.rng.random() < 0.5 else b for a, b in zip(gx, gy)))


def search(space: ArchSpace, fits: Callable[[ArchConfig], bool], score: Callable[[ArchConfig], float], *,
           seed: int = 0, max_evals: int = 300, time_cap_s: float = 120.0, population: int = 16,
           enumerate_max: int = 5000, progress: Progress | None = None) -> tuple[dict[ArchConfig, float], str]:
    """Accuracy of every config looked at, and the method ("enumerate" or "evolution").

    ``fits`` is the cheap budget test from the cost model; ``score`` the (cached) accuracy.
    """
    progress = progress or Progress()
    start = time.monotonic()
    scores: dict[ArchConfig, float] = {}

    def evaluate(configs: list[ArchConfig]) -> None:
        for c in configs:
            if c not in scores and len(scores) < max_evals and time.monotonic() - start < time_cap_s:
                scores[c] = score(c)
                progress.advance()

    if space_size(space) <= enumerate_max:  # cheap to cost every config: enumerate if few fit
        todo = [c for c in enumerate_space(space) if fits(c)]
        if len(todo) <= max_evals:
            progress.phase("accuracy (every config within budget)", len(todo))
            evaluate(todo)
            return scores, "enumerate"
    rng = random.Random(seed)
    genes = _Genes(space, rng)
    progress.phase("accuracy (evolutionary search)", max_evals)
    evaluate(anchors(space)[: max_evals // 2])
    pop = [c for c in scores if fits(c)]
    for _ in range(5000):  # bounded: a tight budget may leave few configs to draw
        if len(pop) >= population:
            break
        c = genes.random()
        if c not in pop and fits(c):
            pop.append(c)
    evaluate(pop)
    while len(scores) < max_evals and time.monotonic() - start < time_cap_s:
        ranked = sorted((c for c in scores if fits(c)), key=lambda c: (-scores[c], c))
        parents = ranked[: max(2, population // 2)]
        if not parents:
            break
        children: list[ArchConfig] = []
        for _ in range(50 * population):  # bounded: a small feasible region may have nothing new
            a = rng.choice(parents)
            c = genes.mutate(genes.cross(a, rng.choice(parents)) if rng.random() < 0.5 else a)
            if c not in scores and c not in children and fits(c):
                children.append(c)
            if len(children) >= population:
                break
        if not children:
            break
        evaluate(children[: max_evals - len(scores)])
    return scores, "evolution"
