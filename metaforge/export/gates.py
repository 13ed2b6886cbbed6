"""Numerical gates: an artifact against its PyTorch model on held-out samples.

Parity (max abs diff, SQNR, top-1 agreement) and task accuracy of both, with a bootstrap 95%
interval; every gate's threshold comes from the target's tolerances. A check is ``pass``,
``fail`` or ``not-run`` (never silently passed when it could not run here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metaforge.targets import Tolerances

BOOTSTRAP_ROUNDS = 1000
SQNR_IDENTICAL = 400.0  # dB reported when the outputs are bit-identical (JSON has no infinity)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "fail" or "not-run"
    detail: str



@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    sqnr_db: float
    top1_agreement: float


@dataclass(frozen=True)
class Accuracy:
    """Top-1 of the artifact and of PyTorch on the same held-out samples, with 95% intervals."""

    artifact: float
    reference: float
    ci95: dict[str, list[float]]  # "artifact", "reference"
    ratio: float | None
    ratio_ci95: list[float] | None
    flips: dict[str, int]  # "to_wrong", "to_right": samples whose correctness the export changed


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` found: the report's parity and accuracy sections and their gate checks."""

    n_samples: int
    parity: Parity
    accuracy: Accuracy
    checks: tuple[Check, ...]


def parity(reference: np.ndarray, artifact: np.ndarray) -> Parity:
    """Logit parity of ``artifact`` against ``reference`` (both N x K)."""
    ref, out = reference.astype(np.float64), artifact.astype(np.float64)
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref**2))
    sqnr = SQNR_IDENTICAL if noise == 0.0 else 10.0 * math.log10(max(signal, 1e-30) / noise)
    return Parity(
        max_abs_diff=float(np.max(np.abs(ref - out))) if ref.size else 0.0,
        sqnr_db=round(sqnr, 3),
        top1_agreement=float(np.mean(ref.argmax(1) == out.argmax(1))) if ref.size else 1.0,
    )


def bootstrap_ci(correct: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean of a 0/1 vector (seeded: the same data, the same interval)."""
    if correct.size == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, size=(rounds, correct.size))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 5), round(float(np.percentile(means, 97.5)), 5)]


def ratio_ci(ok_art: np.ndarray, ok_ref: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> list[float] | None:
    """Paired bootstrap 95% interval of accuracy(artifact) / accuracy(reference) on the same samples.

    Reported beside the point ratio that the gate uses, so a failure by a sample or two on a small
    split can be told from a real loss.
    """
    if ok_art.size == 0 or ok_ref.sum() == 0:
        return None
    idx = np.random.default_rng(seed).integers(0, ok_art.size, size=(rounds, ok_art.size))
    ratios = ok_art[idx].sum(axis=1) / np.maximum(ok_ref[idx].sum(axis=1), 1)
    return [round(float(np.percentile(ratios, 2.5)), 5), round(float(np.percentile(ratios, 97.5)), 5)]


def gate_checks(p: Parity, acc_artifact: float, acc_reference: float, tol: Tolerances) -> list[Check]:
    """One check per tolerance the target sets."""
    checks = []
    if tol.max_abs_diff is not None:
        ok = p.max_abs_diff <= tol.max_abs_diff
        checks.append(Check("parity.max_abs_diff", _status(ok), f"{p.max_abs_diff:.3g} (limit {tol.max_abs_diff:.3g})"))
    if tol.top1_agreement is not None:
        ok = p.top1_agreement >= tol.top1_agreement
        checks.append(Check("parity.top1_agreement", _status(ok), f"{p.top1_agreement:.4f} (minimum {tol.top1_agreement})"))
    if tol.sqnr_db is not None:
        ok = p.sqnr_db >= tol.sqnr_db
        checks.append(Check("parity.sqnr_db", _status(ok), f"{p.sqnr_db:.1f} dB (minimum {tol.sqnr_db} dB)"))
    if tol.int8_accuracy_ratio is not None:
        ratio = acc_artifact / acc_reference if acc_reference > 0 else 1.0
        ok = ratio >= tol.int8_accuracy_ratio
        checks.append(Check("accuracy.ratio", _status(ok),
                            f"{acc_artifact:.4f} / {acc_reference:.4f} = {ratio:.4f} (minimum {tol.int8_accuracy_ratio})"))
    return checks


def _status(ok: bool) -> str:
    return "pass" if ok else "fail"


def compare(reference: np.ndarray, artifact: np.ndarray, labels: np.ndarray, tol: Tolerances) -> Comparison:
    """Parity, accuracy with intervals, and the gate checks."""
    p = parity(reference, artifact)
    ok_art = (artifact.argmax(1) == labels).astype(np.float64)
    ok_ref = (reference.argmax(1) == labels).astype(np.float64)
    acc_art, acc_ref = float(ok_art.mean()), float(ok_ref.mean())
    ci = ratio_ci(ok_art, ok_ref)
    flips = {"to_wrong": int(((ok_ref == 1) & (ok_art == 0)).sum()), "to_right": int(((ok_ref == 0) & (ok_art == 1)).sum())}
    checks = tuple(
        Check(c.name, c.status, f"{c.detail}; paired 95% CI {ci}; {flips['to_wrong']} samples turned wrong, {flips['to_right']} right")
        if c.name == "accuracy.ratio" else c
        for c in gate_checks(p, acc_art, acc_ref, tol)
    )
    accuracy = Accuracy(
        artifact=round(acc_art, 5), reference=round(acc_ref, 5),
        ci95={"artifact": bootstrap_ci(ok_art), "reference": bootstrap_ci(ok_ref)},
        ratio=round(acc_art / acc_ref, 5) if acc_ref > 0 else None, ratio_ci95=ci, flips=flips,
    )
    return Comparison(int(labels.size), p, accuracy, checks)
