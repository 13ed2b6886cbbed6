"""An accuracy model that travels with the manifold: validation top-1 measured at the end of
training at a space-filling set of configs, and a Gaussian process of accuracy fitted to them.

Why: ``fit`` needs the accuracy of thousands of candidate configs, and a real evaluation costs a
materialisation plus a pass over the validation split (seconds per config on Fashion-MNIST). Measured
once, at training, and modelled, candidates are ranked in milliseconds; ``fit`` then spends real
evaluations only on the few whose predictions could be the best (:mod:`metaforge.fit`).

Which configs (:func:`metaforge.accuracy_survey.plan_configs`, which also measures them): the smallest and the full config, the uniform scalings of
:func:`metaforge.fit.search.anchors` (what users ask for most), and a scrambled Sobol sequence of 64
points over every stage's width and depth (the common rule for a Gaussian process is about 10
points per input dimension, Loeppky et al. 2009: 2 x 3 stages = 6 dimensions, 60, rounded up to
the power of two at which a Sobol prefix is balanced). Anchors are interleaved with the Sobol points,
so a measurement cut short by its time share still covers the space evenly; it stops at
``time_share`` (10%) of the training's own wall time, never below ``min_points``.

The model: scikit-learn's ``GaussianProcessRegressor`` (well kept, and it gives a standard deviation
per prediction, which fit needs to know which candidates to confirm), Matern 5/2 kernel with one
length scale per feature, plus a white-noise term for the validation split's sampling noise.
Features: every stage's width fraction and depth (scaled to [0, 1]), log parameters and log FLOPs
relative to the full network.

What is stored (safetensors header key ``accuracy_model``, JSON, schema
``metaforge-accuracy-model/1``): the measured configs and their val top-1, the number of images, the
kernel's fitted hyperparameters (sklearn's log-scale ``theta``) and the leave-one-out error. The model
is rebuilt from these without optimising (:meth:`AccuracyModel.from_record`): the same points and
hyperparameters give the same predictions, and nothing is unpickled. Manifolds written before this
record have none; fit then evaluates candidates one by one, as before.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metaforge.errors import MetaforgeError
from metaforge.space import ArchConfig, ArchSpace

if TYPE_CHECKING:  # numpy, scikit-learn and torch are imported where they are used: reading a header stays light
    import numpy as np


__all__ = ["AccuracyModel", "AccuracyModelConfig", "AccuracyRecord", "RecordError"]

SCHEMA = "metaforge-accuracy-model/1"
KERNEL = "constant * matern(nu=2.5, one length scale per feature) + white"
INSTALL = "pip install 'metaforge[fit]'"


@dataclass(frozen=True)
class AccuracyModelConfig:
    """How many configs to measure at the end of training, and how long that may take."""

    points: int = 64  # Sobol points (a power of two: a balanced prefix), besides the corners and uniform scalings
    time_share: float = 0.10  # of the training's wall time, at most (never fewer than ``min_points``)
    min_points: int = 24  # enough for a 6-dimensional Gaussian process to say something
    seed: int = 0  # of the Sobol scrambling and the hyperparameter optimiser's restarts
    restarts: int = 3  # of the hyperparameter optimiser (from seeded random starts)


class RecordError(ValueError):
    """The stored record is malformed; the loader names the file and turns it into a CheckpointError."""


@dataclass(frozen=True)
class AccuracyRecord:
    """What the manifold keeps: measured points, the kernel's hyperparameters, the held-out error."""

    configs: tuple[ArchConfig, ...]
    accuracy: tuple[float, ...]  # val top-1 of each config, measured at training
    images: int  # size of the validation split they were measured on
    theta: tuple[float, ...]  # the kernel's fitted hyperparameters (log scale, sklearn's order)
    loo_mae: float  # leave-one-out mean absolute error (accuracy, 0..1)
    loo_rmse: float
    loo_within_sigma: float  # share of left-out points within one predicted sigma
    seconds: float  # spent measuring and fitting
    planned: int  # configs planned; fewer were measured when the time share ran out
    time_budget_s: float | None = None
    split: str = "val"

    def to_json(self) -> str:
        d = {"schema": SCHEMA, "split": self.split, "images": self.images, "configs": [str(c) for c in self.configs],
             "accuracy": list(self.accuracy), "kernel": {"form": KERNEL, "theta": list(self.theta)},
             "features": feature_names(len(self.configs[0].widths)),
             "held_out": {"method": "leave-one-out", "mae": self.loo_mae, "rmse": self.loo_rmse,
                          "within_1_sigma": self.loo_within_sigma},
             "seconds": self.seconds, "planned": self.planned, "time_budget_s": self.time_budget_s}
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str, space: ArchSpace) -> "AccuracyRecord":
        """Parse and check a stored record against the manifold's ``space``; :class:`RecordError` says what is wrong."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as e:
            raise RecordError(f"not JSON: {e}") from None
        if not isinstance(d, dict):
            raise RecordError("not a JSON object")
        if d.get("schema") != SCHEMA:
            raise RecordError(f"schema {d.get('schema')!r}, this metaforge reads {SCHEMA!r}")
        try:
            configs = tuple(space.check(ArchConfig.parse(c)) for c in d["configs"])
            acc = tuple(float(a) for a in d["accuracy"])
            theta = tuple(float(t) for t in d["kernel"]["theta"])
            held = d["held_out"]
            rec = cls(configs, acc, int(d["images"]), theta, float(held["mae"]), float(held["rmse"]),
                      float(held["within_1_sigma"]), float(d["seconds"]), int(d["planned"]),
                      None if d.get("time_budget_s") is None else float(d["time_budget_s"]), str(d.get("split", "val")))
        except KeyError as e:
            raise RecordError(f"no {e} field") from None
        except (TypeError, ValueError, AttributeError, MetaforgeError) as e:  # MetaforgeError: a config outside the space
            raise RecordError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        rec.check(space)
        return rec

    def check(self, space: ArchSpace) -> None:
        n, nf = len(self.configs), len(feature_names(space.num_stages))
        if n < 3 or len(self.accuracy) != n:
            raise RecordError(f"{n} configs and {len(self.accuracy)} accuracies (at least 3 of each, as many of one as of the other)")
        if len(set(self.configs)) != n:
            raise RecordError("a config is measured twice")
        if not all(math.isfinite(a) and 0.0 <= a <= 1.0 for a in self.accuracy):
            raise RecordError("an accuracy outside [0, 1]")
        if len(self.theta) != nf + 2 or not all(math.isfinite(t) for t in self.theta):
            raise RecordError(f"{len(self.theta)} kernel hyperparameters, the kernel has {nf + 2} (all finite)")
        if self.images < 1 or self.split != "val":
            raise RecordError(f"measured on {self.images} images of split {self.split!r}: needs the val split")

    def measured(self) -> dict[ArchConfig, float]:
        return dict(zip(self.configs, self.accuracy))

    def describe(self) -> str:
        """One line for ``metaforge info``."""
        cut = f" (of {self.planned} planned: the time share ran out)" if len(self.configs) < self.planned else ""
        return (f"accuracy model: {len(self.configs)} configs{cut} measured on {self.images} {self.split} images "
                f"({self.seconds:.0f} s); Gaussian process, held-out error (leave-one-out): MAE {100 * self.loo_mae:.2f} pt, "
                f"RMSE {100 * self.loo_rmse:.2f} pt, {100 * self.loo_within_sigma:.0f}% within one sigma")


# ---- features and the model ------------------------------------------------------------------
def feature_names(stages: int) -> list[str]:
    return [f"width_frac_{s}" for s in range(stages)] + [f"depth_{s}" for s in range(stages)] + ["log_params", "log_flops"]


def features(configs: list[ArchConfig] | tuple[ArchConfig, ...], space: ArchSpace) -> np.ndarray:
    """One row per config, every feature in [0, 1] so one set of length-scale bounds fits all: width
    fractions, depths scaled to their range, log params and log FLOPs scaled from full (1) to smallest (0)."""
    import numpy as np

    from metaforge.fit import shapes

    def logs(c: ArchConfig) -> tuple[float, float]:
        ls = shapes.layers(c, space)
        return math.log(shapes.params(ls)), math.log(shapes.macs(ls))

    (p_lo, m_lo), (p_hi, m_hi) = logs(space.smallest), logs(space.full)
    rows = []
    for c in configs:
        lp, lm = logs(c)
        rows.append([w / hi for w, hi in zip(c.widths, space.max_widths)]
                    + [(d - lo) / (hi - lo) if hi > lo else 1.0 for d, lo, hi in zip(c.depths, space.min_depths, space.max_depths)]
                    + [(lp - p_lo) / max(p_hi - p_lo, 1e-12), (lm - m_lo) / max(m_hi - m_lo, 1e-12)])
    return np.asarray(rows, dtype=np.float64)


def _kernel(n_features: int):
    """Amplitude, one Matern 5/2 length scale per feature, and noise beyond the split's sampling noise
    (bounds in accuracy units: a length scale below 0.1 of a feature's range would chase that noise)."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    return (ConstantKernel(1e-2, (1e-6, 1.0)) * Matern([1.0] * n_features, (0.1, 100.0), nu=2.5)
            + WhiteKernel(1e-5, (1e-8, 1e-2)))


def _sampling_var(accuracy, images: int):
    """Binomial variance of a top-1 measured on ``images`` images (add-one smoothed: never 0 at 100%)."""
    import numpy as np

    p = (np.asarray(accuracy, dtype=np.float64) * images + 1) / (images + 2)
    return p * (1 - p) / images


def sklearn_missing() -> str | None:
    """Why the model cannot be built here (scikit-learn absent), or None."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return f"scikit-learn is not installed ({INSTALL})"
    return None


def _regressor(kernel, accuracy, images: int, optimise: bool, restarts: int = 0, seed: int = 0):
    from sklearn.gaussian_process import GaussianProcessRegressor

    return GaussianProcessRegressor(kernel, alpha=_sampling_var(accuracy, images) + 1e-10, optimizer="fmin_l_bfgs_b" if optimise else None,
                                    n_restarts_optimizer=restarts if optimise else 0, random_state=seed, normalize_y=False)


class AccuracyModel:
    """Predicted val top-1 (mean and standard deviation) of any config of a space."""

    def __init__(self, space: ArchSpace, configs: list[ArchConfig], accuracy: list[float], images: int, theta) -> None:
        """The Gaussian process of ``configs`` -> ``accuracy`` (measured on ``images`` images) with the
        kernel hyperparameters ``theta`` (no optimising). Each point's binomial sampling variance is known
        and given as its own noise; the prior mean is the points' mean."""
        import numpy as np

        self.space, self.configs, self.accuracy, self.images = space, list(configs), list(accuracy), images
        x = features(self.configs, space)
        self._rows: dict[ArchConfig, np.ndarray] = dict(zip(self.configs, x))  # features of configs seen, by config
        kernel = _kernel(x.shape[1]).clone_with_theta(np.asarray(theta, dtype=np.float64))
        self.gp = _regressor(kernel, self.accuracy, images, optimise=False)
        self.mean = float(np.mean(self.accuracy))
        self.gp.fit(x, np.asarray(self.accuracy, dtype=np.float64) - self.mean)

    @property
    def theta(self) -> tuple[float, ...]:
        return tuple(float(t) for t in self.gp.kernel_.theta)

    @classmethod
    def fitted(cls, space: ArchSpace, configs: list[ArchConfig], accuracy: list[float], images: int, seed: int = 0,
               restarts: int = 3) -> "AccuracyModel":
        """Optimise the hyperparameters (marginal likelihood, seeded restarts), then build the model from them."""
        import numpy as np
        from sklearn.exceptions import ConvergenceWarning

        x = features(configs, space)
        gp = _regressor(_kernel(x.shape[1]), accuracy, images, optimise=True, restarts=restarts, seed=seed)
        with warnings.catch_warnings():  # a length scale at its bound (an irrelevant feature) is an answer, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x, np.asarray(accuracy, dtype=np.float64) - float(np.mean(accuracy)))
        return cls(space, configs, accuracy, images, gp.kernel_.theta)

    @classmethod
    def from_record(cls, record: AccuracyRecord, space: ArchSpace) -> "AccuracyModel":
        return cls(space, list(record.configs), list(record.accuracy), record.images, record.theta)

    def predict(self, configs: list[ArchConfig]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per config; the deviation is that of a measurement on the same
        split (the model's uncertainty plus the split's sampling noise), so it compares with measured values."""
        import numpy as np

        if not configs:
            return np.empty(0), np.empty(0)
        rows = [self._rows.get(c) for c in configs]
        missing = [c for c, r in zip(configs, rows) if r is None]
        if missing:
            self._rows.update(zip(missing, features(missing, self.space)))
        mean, std = self.gp.predict(np.stack([self._rows[c] for c in configs]), return_std=True)
        mean = mean + self.mean
        return mean, np.sqrt(std ** 2 + _sampling_var(np.clip(mean, 0.0, 1.0), self.images))

    def with_points(self, more: dict[ArchConfig, float]) -> "AccuracyModel":
        """The same kernel conditioned on more measured points (those not in it yet)."""
        have = set(self.configs)
        new = {c: a for c, a in more.items() if c not in have}
        if not new:
            return self
        m = AccuracyModel(self.space, self.configs + list(new), self.accuracy + list(new.values()), self.images, self.theta)
        m._rows = self._rows
        return m

    def leave_one_out(self) -> tuple[float, float, float]:
        """MAE, RMSE and the share within one sigma, each point predicted by the others (same hyperparameters)."""
        errs, within = [], 0
        for i in range(len(self.configs)):
            rest = [j for j in range(len(self.configs)) if j != i]
            m = AccuracyModel(self.space, [self.configs[j] for j in rest], [self.accuracy[j] for j in rest], self.images, self.theta)
            mean, std = m.predict([self.configs[i]])
            err = abs(float(mean[0]) - self.accuracy[i])
            errs.append(err)
            within += err <= float(std[0])
        n = len(errs)
        return sum(errs) / n, math.sqrt(sum(e * e for e in errs) / n), within / n
