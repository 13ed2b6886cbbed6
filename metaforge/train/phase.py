"""What every manifold phase shares, whichever recipe runs it: resume, checkpoints, the epoch log."""

from __future__ import annotations

from pathlib import Path

import torch

from metaforge.data import Dataset
from metaforge.errors import CheckpointError
from metaforge.evaluate import accuracy
from metaforge.manifold import QUICK_CALIBRATION, Manifold
from metaforge.progress import Progress
from metaforge.space import ArchConfig
from metaforge.train.config import TrainConfig
from metaforge.train.dist import Dist
from metaforge.train.loop import Position
from metaforge.train.precision import Precision
from metaforge.train.state import restore_rng_states, rng_states, save_state


Optimizers = torch.optim.Optimizer | tuple[torch.optim.Optimizer, ...]  # one, or several over disjoint parameters


def _as_tuple(opt: Optimizers) -> tuple[torch.optim.Optimizer, ...]:
    return opt if isinstance(opt, tuple) else (opt,)


class ManifoldPhase:
    """Resume, checkpoints and the epoch log of a manifold phase, whichever recipe runs it."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, manifold: Manifold, ema: Manifold, device, run_dir: Path, progress: Progress, d: Dist) -> None:
        self.cfg, self.ds, self.manifold, self.ema, self.device = cfg, ds, manifold, ema, device
        self.run_dir, self.progress, self.d = run_dir, progress, d

    def resume(self, state: dict | None, opt: Optimizers, prec: Precision) -> Position:
        """Where the phase starts: the saved position (optimisers, EMA, scaler, RNG restored), or 0."""
        if not (state and state.get("phase") == "manifold"):
            return Position()
        opts = _as_tuple(opt)
        saved = [state["opt"], *state.get("more_opts", [])]
        if ([len(s["param_groups"]) for s in saved] != [len(o.param_groups) for o in opts]
                or state.get("recipe", "single") != self.cfg.recipe):
            raise CheckpointError(f"{self.run_dir} was started by an older metaforge or another recipe; "
                                  "finish it with that version, or start the run again")
        for o, s in zip(opts, saved):
            o.load_state_dict(s)
        self.ema.inr.load_state_dict(state["ema"])
        prec.load_state_dict(state.get("scaler"))
        restore_rng_states(state.get("rng"), torch.device(self.device))
        return Position(state["epoch"], state["step"])

    def save(self, p: Position, opt: Optimizers, prec: Precision) -> None:
        if self.d.main:
            first, *more = _as_tuple(opt)
            save_state(self.run_dir, {
                "phase": "manifold", "recipe": self.cfg.recipe, "epoch": p.epoch, "step": p.step,
                "inr": self.manifold.inr.state_dict(), "ema": self.ema.inr.state_dict(), "opt": first.state_dict(),
                "more_opts": [o.state_dict() for o in more],
                "scaler": prec.state_dict(), "rng": rng_states(torch.device(self.device)),
            })

    def end_epoch(self, smallest: ArchConfig):
        """The callback that logs validation accuracy of the full and the smallest size (10 times a phase)."""
        cfg, ds, space = self.cfg, self.ds, self.manifold.space

        def log(epoch: int) -> None:
            if not self.d.main or (epoch % max(1, cfg.epochs // 10) and epoch != cfg.epochs):
                return
            accs = [accuracy(self.ema.materialize(c, calibration=QUICK_CALIBRATION), ds.val, ds.norm, device=self.device) for c in (space.full, smallest)]
            self.progress.log(f"manifold epoch {epoch}/{cfg.epochs}: val top-1 full {accs[0]:.4f}, smallest '{smallest}' {accs[1]:.4f}")
        return log
