"""Which sizes training visits: seen widths/depths, the step's config, the evaluation grid."""

from __future__ import annotations

import torch

from metaforge.space import ArchConfig, ArchSpace
from metaforge.train.config import ProgressiveConfig

REDRAWS = 64  # a space whose every draw is its full size (a point) must not loop forever


def seen_widths(space: ArchSpace, fracs: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """Per stage, the widths training samples (fractions of the full width, rounded)."""
    return tuple(
        tuple(sorted({min(hi, max(lo, round(f * hi))) for f in fracs}))
        for lo, hi in zip(space.min_widths, space.max_widths)
    )


def continuous_widths(space: ArchSpace, holdout_fracs: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """Per stage, every integer width of the space except the held-out fractions' (rounded).

    Holding widths out keeps "never seen in training" true for the sizes built from them.
    """
    out = []
    for lo, hi in zip(space.min_widths, space.max_widths):
        held = {round(f * hi) for f in holdout_fracs}
        out.append(tuple(w for w in range(lo, hi + 1) if w not in held or w in (lo, hi)))
    return tuple(out)


def seen_depths(space: ArchSpace) -> tuple[tuple[int, ...], ...]:
    """Per stage, every depth of the space (depths are few and cheap to cover)."""
    return tuple(tuple(range(lo, hi + 1)) for lo, hi in zip(space.min_depths, space.max_depths))


def varying_stages(step: int, total: int, num_stages: int, incremental: bool, frac: float) -> int:
    """How many leading stages vary at ``step``: block-wise incremental, shallow to deep."""
    if not incremental or num_stages == 1:
        return num_stages
    incr_steps = int(frac * total)
    if step >= incr_steps:
        return num_stages
    return 1 + step * (num_stages - 1) // max(1, incr_steps)


def sample_config(
    space: ArchSpace,
    widths: tuple[tuple[int, ...], ...],
    depths: tuple[tuple[int, ...], ...],
    n_varying: int,
    gen: torch.Generator,
    smallest: bool = False,
) -> ArchConfig:
    """A random seen config whose first ``n_varying`` stages vary; later stages stay full.

    ``smallest`` takes the narrowest and shallowest seen choice for the varying stages instead
    (the bottom slice of the "sandwich" of slimmable networks).
    """
    w, d = list(space.max_widths), list(space.max_depths)
    for s in range(n_varying):
        w[s] = widths[s][0 if smallest else int(torch.randint(len(widths[s]), (1,), generator=gen))]
        d[s] = depths[s][0 if smallest else int(torch.randint(len(depths[s]), (1,), generator=gen))]
    return ArchConfig(tuple(w), tuple(d))


def sample_shared_fraction(
    space: ArchSpace,
    widths: tuple[tuple[int, ...], ...],
    depths: tuple[tuple[int, ...], ...],
    gen: torch.Generator,
    shared_depth: bool = False,
    step: float = 0.0,
    tilt: float = 0.0,
) -> ArchConfig:
    """A random config whose stages share one width fraction (a width multiplier, as US-Nets samples).

    Why: drawn per stage, widths that are narrow in every stage at once are rare, although uniform
    scalings are what users ask for most; each stage takes its allowed width nearest the fraction.
    ``shared_depth`` draws one depth rank for every stage as well (each stage's choices equally
    likely): drawn per stage, "one block less everywhere" comes one time in 27 with three stages.
    ``step`` > 0 draws the fraction from the grid 1, 1 - step, ... down to the narrowest width
    (0.125: the width multipliers users ask for), so that each uniform scaling on it is trained
    several times as often as under a continuous draw, where every stage must round alike;
    ``tilt`` > 0 draws grid fraction f with probability in proportion to f ** tilt (1: to the width,
    2: about to the FLOPs), so the wide sizes, which share most weights with the full size, come more often.
    """
    bounds = list(zip(space.min_widths, space.max_widths))
    if step > 0:
        fracs = grid_fractions(space, step)
        if tilt > 0:
            f = fracs[int(torch.multinomial(torch.tensor(fracs, dtype=torch.float64) ** tilt, 1, generator=gen))]
        else:
            f = fracs[int(torch.randint(len(fracs), (1,), generator=gen))]
        targets = _scaled_targets(space, f)
    else:
        u = float(torch.rand(1, generator=gen))
        targets = [lo + u * (hi - lo) for lo, hi in bounds]
    w = _nearest_widths(widths, targets)
    return ArchConfig(w, _shared_depths(depths, gen) if shared_depth else _stage_depths(depths, gen))


def random_size(space: ArchSpace, widths: tuple[tuple[int, ...], ...], depths: tuple[tuple[int, ...], ...],
                gen: torch.Generator, pc: ProgressiveConfig, k: int, step: int = 0, seed: int = 0) -> ArchConfig:
    """The ``k``-th random size of a progressive step: a uniform scaling for the first
    ``pc.shared_fraction`` of them, then sizes drawn stage by stage.

    With ``pc.redraw_full`` a draw that is the full size is drawn again: every step trains the full
    size already, and a second pass of it on its own detached predictions has no gradient (on the
    0.125 grid with shared depth, one scaling draw in 21). Off by default: measured, it saved no
    CPU time to speak of and did not raise accuracy (docs/BENCHMARKS.md, round 8). With
    ``pc.shared_cycle`` the uniform scalings come from :func:`cycled_scaling` (``step`` and ``seed``
    place the draw in its cycle) and ``gen`` draws only the per-stage sizes.
    """
    if k < pc.shared_fraction and pc.shared_cycle:
        return cycled_scaling(space, widths, depths, pc, step * pc.shared_fraction + k, seed, gen)
    for _ in range(REDRAWS):
        if k < pc.shared_fraction:
            config = sample_shared_fraction(space, widths, depths, gen, pc.shared_depth, pc.shared_step, pc.shared_tilt)
        else:
            config = sample_config(space, widths, depths, space.num_stages, gen)
        if not (pc.redraw_full and config == space.full):
            break
    return config


def scaling_cycle(space: ArchSpace, depths: tuple[tuple[int, ...], ...], pc: ProgressiveConfig) -> list[tuple[float, int]]:
    """Every (grid width fraction, shared depth rank) pair the uniform scalings take, in a fixed order
    (less the full size itself under ``pc.redraw_full``); without a shared depth, the fractions alone."""
    ranks = max(len(ds) for ds in depths) if pc.shared_depth else 1
    pairs = [(f, r) for f in grid_fractions(space, pc.shared_step) for r in range(ranks)]
    if pc.redraw_full and pc.shared_depth:
        pairs = [(f, r) for f, r in pairs if not (f == 1.0 and r == ranks - 1)] or pairs
    return pairs


def cycled_scaling(space: ArchSpace, widths: tuple[tuple[int, ...], ...], depths: tuple[tuple[int, ...], ...],
                   pc: ProgressiveConfig, draw: int, seed: int, gen: torch.Generator) -> ArchConfig:
    """The ``draw``-th uniform scaling of a run that cycles through them (``--shared-cycle``).

    Why: drawn independently, which grid scalings a run happens to train in its last steps, where
    the rate is small and the weights settle, differs from one sampling stream to the next, and the
    mid-width sizes' scores spread with it (0.14-0.36 points between streams of one base). Taking
    every (fraction, depth rank) pair once per cycle, each cycle in its own seeded order, trains each
    uniform scaling equally often over any window of the run, as stratified sampling does. Without
    ``pc.shared_depth`` each stage's depth is drawn from ``gen``, as :func:`sample_shared_fraction` does.
    Measured on four seeds at the same compute: no gain (docs/BENCHMARKS.md, round 15), hence off by default.
    """
    pairs = scaling_cycle(space, depths, pc)
    cycle, pos = divmod(draw, len(pairs))
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed * 7_919 + cycle + 1))
    f, rank = pairs[int(order[pos])]
    w = _nearest_widths(widths, _scaled_targets(space, f))
    if not pc.shared_depth:
        return ArchConfig(w, _stage_depths(depths, gen))
    return ArchConfig(w, _depths_at(depths, (rank + 0.5) / max(len(ds) for ds in depths)))


def sample_bottom(widths: tuple[tuple[int, ...], ...], depths: tuple[tuple[int, ...], ...], gen: torch.Generator | None,
                  any_depth: bool = False) -> ArchConfig:
    """The bottom of the sandwich: every stage at its narrowest width, and its shallowest depth or,
    with ``any_depth``, one depth rank drawn for every stage (the narrowest widths at full depth
    are what the narrow full-depth sizes share their first channels with)."""
    w = tuple(ws[0] for ws in widths)
    if not any_depth:
        return ArchConfig(w, tuple(ds[0] for ds in depths))
    return ArchConfig(w, _shared_depths(depths, gen))


def bottom_of_step(widths: tuple[tuple[int, ...], ...], depths: tuple[tuple[int, ...], ...], gen: torch.Generator, step: int,
                   rule: str) -> ArchConfig:
    """The bottom of step ``step`` under ``--bottom-depth`` ``rule``: "min", "shared" or "alternate" (the
    shallowest on even steps, a drawn depth on odd ones: the narrow full-depth sizes get the bottom half the
    time and the narrow depth-1 configs keep it the other half)."""
    drawn = rule == "shared" or (rule == "alternate" and step % 2 == 1)
    return sample_bottom(widths, depths, gen, drawn)


def _shared_depths(depths: tuple[tuple[int, ...], ...], gen: torch.Generator | None) -> tuple[int, ...]:
    """One depth rank drawn for every stage (each stage's choices equally likely)."""
    return _depths_at(depths, float(torch.rand(1, generator=gen)))


def _stage_depths(depths: tuple[tuple[int, ...], ...], gen: torch.Generator) -> tuple[int, ...]:
    """Each stage's depth drawn on its own."""
    return tuple(ds[int(torch.randint(len(ds), (1,), generator=gen))] for ds in depths)


def _depths_at(depths: tuple[tuple[int, ...], ...], r: float) -> tuple[int, ...]:
    """Each stage's depth at relative rank ``r`` in [0, 1) of its choices."""
    return tuple(ds[min(len(ds) - 1, int(r * len(ds)))] for ds in depths)


def _scaled_targets(space: ArchSpace, f: float) -> list[float]:
    """Each stage's width at multiplier ``f`` of its full width, not below its narrowest."""
    return [max(lo, f * hi) for lo, hi in zip(space.min_widths, space.max_widths)]


def _nearest_widths(widths: tuple[tuple[int, ...], ...], targets: list[float]) -> tuple[int, ...]:
    """Each stage's allowed width nearest its target."""
    return tuple(min(ws, key=lambda x, t=t: abs(x - t)) for ws, t in zip(widths, targets))


def grid_fractions(space: ArchSpace, step: float) -> tuple[float, ...]:
    """Width fractions 1, 1 - step, 1 - 2 step, ... down to the space's narrowest fraction."""
    lowest = min(lo / hi for lo, hi in zip(space.min_widths, space.max_widths))
    return tuple(1 - k * step for k in range(int((1 - lowest) / step + 1e-9) + 1))


EVAL_WIDTH_FRACS = (0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


def evaluation_grid(space: ArchSpace) -> list[ArchConfig]:
    """Sizes reported in a manifold's accuracy table: uniform width fractions at two depths."""
    shallower = tuple(max(lo, hi - 1) for lo, hi in zip(space.min_depths, space.max_depths))
    grid: list[ArchConfig] = []
    for depths in dict.fromkeys([space.max_depths, shallower]):
        for f in EVAL_WIDTH_FRACS:
            c = space.scaled(f, depths)
            if c not in grid:
                grid.append(c)
    return grid
