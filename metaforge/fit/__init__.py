"""``fit(manifold, profile)``: the most accurate config of a manifold within a device's budgets.

Accuracy comes from the manifold's accuracy model when it carries one (:mod:`metaforge.fit.ranked`:
candidates ranked by predicted val top-1, the few that may be the best confirmed by real evaluation,
the pick made on measured accuracy); manifolds written before there was one are searched by
evaluating candidates (:mod:`metaforge.fit.search`), as before, and fit says so in one line. Every
accuracy says its source: ``measured`` (on N validation images) or ``predicted`` (+- sigma).

Costs come from the cost model (:mod:`metaforge.fit.latency`, :mod:`metaforge.fit.memory`):
a per-layer table when one is given, else the profile's roofline. With ``measure=True`` the pick
is re-measured in the real runtime and, while it misses the budget, replaced by the next most
accurate candidate (a bounded walk). A budget no config can meet raises
:class:`InfeasibleBudget` (exit code 3) at once, carrying the nearest feasible config and its cost.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from metaforge.errors import InputError, MetaforgeError
from metaforge.fit import shapes
from metaforge.fit.latency import Measurement, MeasureError, measure_one, runtime_available
from metaforge.fit.memory import predict_memory
from metaforge.fit.ranked import RankSettings, in_space, known_accuracies, manifold_model
from metaforge.fit.shapes import Layer
from metaforge.profiles import Budget, Profile, load_profile
from metaforge.progress import Progress
from metaforge.space import ArchConfig

if TYPE_CHECKING:  # torch: imported by fit() itself, so the fit document and the CLI's checks stay light
    from metaforge.fit.search import Evaluator
    from metaforge.manifold import Manifold

__all__ = ["Candidate", "FitResult", "InfeasibleBudget", "fit", "pareto_front"]

LatencySource = Callable[[list[Layer]], tuple[float, str]]
Measurer = Callable[..., Measurement]


@dataclass(frozen=True)
class Candidate:
    """A config with its accuracy and cost; every number says where it came from."""

    config: ArchConfig
    accuracy: float
    latency_ms: float
    latency_source: str  # "measured", "table" or "roofline"
    memory_mb: float
    memory_source: str  # "measured", "table" or "analytic"
    params: int
    mflops: float
    accuracy_source: str = "measured"  # "measured" (val top-1 on accuracy_images images) or "predicted" (+- accuracy_sigma)
    accuracy_images: int | None = None
    accuracy_sigma: float | None = None

    @property
    def accuracy_text(self) -> str:
        """The accuracy with its source, as tables and messages write it."""
        if self.accuracy_source == "predicted":
            return f"{self.accuracy:.4f} ± {self.accuracy_sigma or 0.0:.4f} (predicted)"
        return f"{self.accuracy:.4f} (measured{f' on {self.accuracy_images}' if self.accuracy_images else ''})"

    def within(self, budget: Budget) -> bool:
        """Within the latency and memory budgets (the accuracy floor is checked apart)."""
        return ((budget.latency_ms is None or self.latency_ms <= budget.latency_ms)
                and (budget.memory_mb is None or self.memory_mb <= budget.memory_mb))


@dataclass
class FitResult:
    profile: Profile
    budget: Budget
    manifold: str
    pick: Candidate | None
    feasible: bool
    pareto: list[Candidate]
    evaluated: int
    method: str
    seconds: float
    manifold_sha256: str = ""  # of the manifold file: the fit document is refused for any other
    message: str = ""
    measured: list[Candidate] = field(default_factory=list)  # the walk of --measure, in order
    latency_table: str | None = None  # the table file "table" latencies came from
    confirmed: int = 0  # accuracy-model fits: the predictions confirmed by a real evaluation
    note: str = ""  # how accuracy was found, when not by the manifold's accuracy model


class InfeasibleBudget(MetaforgeError):
    """No config meets the budget; ``result.pick`` is the nearest feasible config and its cost."""

    exit_code = 3

    def __init__(self, message: str, result: FitResult) -> None:
        super().__init__(message)
        self.result = result


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Configs no other beats on accuracy, latency and memory at once; by latency."""
    def dominates(a: Candidate, b: Candidate) -> bool:
        ge = a.accuracy >= b.accuracy and a.latency_ms <= b.latency_ms and a.memory_mb <= b.memory_mb
        return ge and (a.accuracy > b.accuracy or a.latency_ms < b.latency_ms or a.memory_mb < b.memory_mb)
    return sorted((c for c in cands if not any(dominates(o, c) for o in cands)), key=lambda c: (c.latency_ms, -c.accuracy))


def _limits(budget: Budget) -> str:
    parts = [f"latency <= {budget.latency_ms:g} ms ({budget.latency_stat})" if budget.latency_ms else "",
             f"memory <= {budget.memory_mb:g} MB" if budget.memory_mb else ""]
    return " and ".join(p for p in parts if p) or "no limit"


def _cost(c: Candidate) -> str:
    return (f"'{c.config}' at {c.latency_ms:.4g} ms ({c.latency_source}), {c.memory_mb:.4g} MB ({c.memory_source}), "
            f"val top-1 {c.accuracy_text}")


def _least_ratio(walk: list[Candidate], costs: dict[ArchConfig, tuple]) -> float:
    """The smallest ratio of measured to predicted latency among the candidates measured so far.

    When the prediction runs low near the budget, the walk would spend its measurements on
    candidates that all miss; a candidate whose prediction times this ratio is over the budget
    is passed over (the most favourable ratio, so a candidate that could fit is never skipped
    because of one unlucky measurement)."""
    return min(c.latency_ms / costs[c.config][0] for c in walk)


def fit(manifold: str | Path | Manifold, profile: str | Path | Profile, *, latency_ms: float | None = None,
        memory_mb: float | None = None, accuracy_floor: float | None = None, table: str | Path | None = None,
        measure: bool = False, max_measure: int = 12, measure_margin: float = 0.15, seed: int = 0,
        max_evals: int = 300, time_cap_s: float = 120.0, progress: Progress | None = None,
        latency_source: LatencySource | None = None, measurer: Measurer | None = None,
        use_model: bool = True, rank: RankSettings = RankSettings(), evaluator: Evaluator | None = None) -> FitResult:
    """Pick the most accurate config of ``manifold`` (a file, or one loaded from a file) within ``profile``'s budgets (overridable).

    ``latency_source(layers) -> (ms, source name)`` replaces the table / roofline prediction and
    ``measurer(module, (C, H, W)) -> Measurement`` the ONNX Runtime measurement (tests use fakes).
    ``use_model=False`` searches by evaluation even where the manifold has an accuracy model.
    ``evaluator`` (of the same loaded manifold) is shared by several fits, so that none evaluates a
    config another has, nor loads the dataset again (``check`` over several profiles).
    """
    from metaforge.checkpoint import load_manifold, read_header

    t0 = time.monotonic()
    progress = progress or Progress()
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    budget = prof.budget.overridden(latency_ms=latency_ms, memory_mb=memory_mb, accuracy_floor=accuracy_floor)
    if measure and measurer is None and (reason := runtime_available(prof)):
        raise MeasureError(f"--measure is not possible here: {reason}")
    if isinstance(manifold, (str, Path)):
        read_header(manifold)  # a bad file is named before torch is imported
    from metaforge.fit.predict import predictor_for
    from metaforge.fit.search import AccuracyCache, Evaluator, search
    from metaforge.manifold import QUICK_CALIBRATION, Manifold

    m = manifold if isinstance(manifold, Manifold) else load_manifold(manifold)
    if m.source is None:
        raise InputError("fit needs a manifold read from a file: its accuracy cache and the fit document name that file")
    space, stat = m.space, budget.latency_stat
    predict = predictor_for(prof, table)
    if evaluator is not None and evaluator.manifold is not m:
        raise InputError("fit's evaluator must belong to the manifold being fitted")
    evaluator = evaluator or Evaluator(m, AccuracyCache(m.source))
    cache = evaluator.cache
    costs: dict[ArchConfig, tuple] = {}

    def cost(c: ArchConfig) -> tuple:
        if c not in costs:
            ls = shapes.layers(c, space)
            lat = latency_source(ls) if latency_source is not None else (predict(ls, stat), predict.source)
            costs[c] = (*lat, *predict_memory(ls, prof, predict.table), shapes.params(ls), 2 * shapes.macs(ls) / 1e6)
        return costs[c]

    model, note = manifold_model(m) if use_model else (None, "")
    if note:
        progress.log(note)
    measured = known_accuracies(m, cache) if model is not None else {}
    def measured_candidate(c: ArchConfig, acc: float) -> Candidate:  # measured on the whole validation split
        return Candidate(c, acc, *cost(c), "measured", cache.images)

    def candidate(c: ArchConfig) -> Candidate:
        if c not in measured:
            measured[c] = evaluator(c)
        return measured_candidate(c, measured[c])

    def result(pick, feasible, cands, method, message="", walk=(), confirmed=0) -> FitResult:
        return FitResult(prof, budget, str(m.source), pick, feasible, pareto_front(cands), len(cands), method,
                         time.monotonic() - t0, cache.sha256, message, list(walk),
                         str(predict.table_path) if predict.table is not None else None, confirmed, note)

    slack = 1 + measure_margin if measure else 1.0
    loose = dataclasses.replace(budget, latency_ms=budget.latency_ms and budget.latency_ms * slack,
                                memory_mb=budget.memory_mb and budget.memory_mb * slack)
    # An impossible budget is known before any search: the smallest config is the cheapest.
    smallest = candidate(space.smallest)
    if not smallest.within(loose):
        cache.save()
        msg = (f"no config of this manifold meets {_limits(budget)} on {prof.name}: the smallest, {_cost(smallest)}; "
               f"raise the budget to at least that, or choose a faster device")
        raise InfeasibleBudget(msg, result(smallest, False, [smallest], "none", msg))

    fits = lambda c: Candidate(c, 0.0, *cost(c)).within(loose)  # noqa: E731
    confirmed = 0
    if model is not None:
        from metaforge.fit.ranked import candidate_pool, confirm

        strict = lambda c: Candidate(c, 0.0, *cost(c)).within(budget)  # noqa: E731
        pool = candidate_pool(space, fits, model, list(measured) + list(m.accuracy_record.configs), seed, rank)
        deadline = t0 + time_cap_s
        try:  # the budget itself, then (--measure) the margin above it that the walk may need
            for within in ((strict, fits) if measure else (strict,)):
                model, n = confirm(pool, within, model, measured, evaluator, rank, deadline, progress)
                confirmed += n
        finally:
            cache.save()
        todo = [c for c in pool if c not in measured]
        mean, std = model.predict(todo)
        cands = [measured_candidate(c, acc) for c, acc in measured.items()]
        cands += [Candidate(c, float(mu), *cost(c), "predicted", None, float(sd)) for c, mu, sd in zip(todo, mean, std)]
        method = "accuracy-model"
    else:
        try:
            scores, method = search(space, fits, evaluator, seed=seed, max_evals=max_evals, time_cap_s=time_cap_s, progress=progress)
        finally:
            cache.save()
        for key, acc in cache.values.items():  # configs of earlier searches cost nothing to consider
            c = ArchConfig.parse(key)
            if c not in scores and in_space(space, c):
                scores[c] = acc
        cands = [measured_candidate(c, acc) for c, acc in scores.items()]
    ranking = sorted((c for c in cands if c.within(loose) and c.accuracy_source == "measured"), key=lambda c: (-c.accuracy, c.latency_ms))
    if not measure:
        ranking = [c for c in ranking if c.within(budget)]
    good = [c for c in ranking if c.accuracy >= budget.accuracy_floor]
    if not good:
        near = ranking[0] if ranking else smallest
        msg = (f"no config within {_limits(budget)} reaches the accuracy floor {budget.accuracy_floor:g} on {prof.name}: "
               f"the most accurate is {_cost(near)}; lower the floor or raise the budget")
        raise InfeasibleBudget(msg, result(near, False, cands, method, msg, confirmed=confirmed))
    if not measure:
        return result(good[0], True, cands, method, confirmed=confirmed)

    walk: list[Candidate] = []
    skipped = 0
    shape = space.input_shape
    for c in good:
        if len(walk) == max_measure:
            break
        if walk and budget.latency_ms and c.latency_ms * _least_ratio(walk, costs) > budget.latency_ms:
            skipped += 1  # even the most favourable measured/predicted ratio so far puts it over the budget
            continue
        progress.log(f"measuring '{c.config}' in ONNX Runtime")
        net = m.materialize(c.config, calibration=QUICK_CALIBRATION)  # timed, not scored: BN statistics do not matter
        meas = measurer(net, shape) if measurer else measure_one(net, shape, prof)
        mem = (meas.peak_mb, "measured") if meas.peak_mb is not None else (c.memory_mb, c.memory_source)
        real = dataclasses.replace(c, latency_ms=meas.stat(stat), latency_source="measured", memory_mb=mem[0], memory_source=mem[1])
        walk.append(real)
        if real.within(budget):
            cands = [real if x.config == real.config else x for x in cands]
            return result(real, True, cands, method, walk=walk, confirmed=confirmed)
    near = min(walk, key=lambda c: c.latency_ms)
    msg = (f"none of the {len(walk)} most accurate candidates met {_limits(budget)} when measured on {prof.name}"
           f"{f' ({skipped} more were passed over: their prediction, corrected by the measurements, was over budget)' if skipped else ''}; "
           f"the fastest measured was {_cost(near)}; raise the budget or re-measure the latency table")
    raise InfeasibleBudget(msg, result(near, False, cands, method, msg, walk, confirmed))
