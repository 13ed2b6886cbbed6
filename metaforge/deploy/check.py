"""``check``: for each device profile, fit -> export to its target -> run -> gates; JUnit for CI.

Gates per profile: export, parity, accuracy (floor and int8 ratio), latency, memory, and for
TensorRT the engine. Budgets are measured where the runtime is here (``fit --measure``) and
otherwise predicted, and each result says which. Exit code: 4 an export failed, else 2 a parity or
accuracy gate failed, else 3 a budget gate failed, else 0.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from metaforge.errors import MetaforgeError, OutputError
from metaforge.export.gates import Check
from metaforge.io import atomic_write_text
from metaforge.profiles import Profile
from metaforge.progress import Progress

if TYPE_CHECKING:
    from metaforge.export.report import ExportReport
    from metaforge.fit.search import Evaluator
    from metaforge.manifold import Manifold

GATES = ("export", "parity", "accuracy", "latency", "memory", "engine")
EXIT_CODES = {"export": 4, "parity": 2, "accuracy": 2, "engine": 2, "latency": 3, "memory": 3}


@dataclass(frozen=True)
class Gate:
    profile: str
    gate: str
    status: str  # pass, fail, not-run
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class ProfileRun:
    profile: str
    target: str = ""
    config: str = ""
    report: ExportReport | None = None
    gates: tuple[Gate, ...] = ()


def check_profiles(manifold: str | Path, profiles: list[str], out_dir: str | Path, *, time_cap_s: float = 120.0,
                   progress: Progress | None = None) -> list[ProfileRun]:
    """Every profile fitted, exported and gated; the manifold and its dataset are loaded once for all."""
    from metaforge.checkpoint import load_manifold, read_header
    from metaforge.profiles import load_profile

    from metaforge.fit.search import Evaluator

    read_header(manifold)  # every input is checked before the first profile's work is done
    profs = [load_profile(p) for p in profiles]
    m = load_manifold(manifold)
    evaluator = Evaluator(m)  # one dataset and one set of measured accuracies for every profile
    return [check_profile(m, p, Path(out_dir), time_cap_s, progress or Progress(), evaluator) for p in profs]


def check_profile(m: Manifold, prof: Profile, out_dir: Path, time_cap_s: float, progress: Progress,
                  evaluator: Evaluator | None = None) -> ProfileRun:
    """One profile's gates; ``evaluator`` (of ``m``) shares the dataset and measured accuracies across profiles."""
    from metaforge.deploy.job import job_for
    from metaforge.export.pipeline import export_model
    from metaforge.fit import InfeasibleBudget, fit
    from metaforge.fit.latency import runtime_available

    gates: list[Gate] = []
    gate = lambda g, s, d, t=0.0: gates.append(Gate(prof.name, g, s, d, round(t, 3)))  # noqa: E731
    done = lambda config, report=None: ProfileRun(prof.name, prof.target, config, report, tuple(gates))  # noqa: E731
    b = prof.budget
    t0 = time.monotonic()
    measure = runtime_available(prof) is None
    try:
        pick = fit(m, prof, measure=measure, time_cap_s=time_cap_s, progress=progress, evaluator=evaluator).pick
    except InfeasibleBudget as e:
        pick = e.result.pick
        for g, value, limit, src in (("latency", pick and pick.latency_ms, b.latency_ms, pick and pick.latency_source),
                                     ("memory", pick and pick.memory_mb, b.memory_mb, pick and pick.memory_source)):
            ok = value is None or limit is None or value <= limit
            gate(g, "pass" if ok else "fail", f"{value:.4g} ({src}) vs budget {limit}" if value is not None else str(e))
        gate("accuracy", "fail" if "accuracy floor" in str(e) else "not-run", str(e))
        for g in ("export", "parity"):
            gate(g, "not-run", "no config of the manifold meets the budget")
        return done(str(pick.config) if pick else "")
    fit_s = time.monotonic() - t0
    gate("latency", _budget_status(pick.latency_ms, b.latency_ms),
         f"{pick.latency_ms:.4g} ms {b.latency_stat} ({_label(pick.latency_source)}) vs budget {b.latency_ms} ms", fit_s)
    gate("memory", _budget_status(pick.memory_mb, b.memory_mb),
         f"{pick.memory_mb:.4g} MB ({_label(pick.memory_source)}) vs budget {b.memory_mb} MB")
    t1 = time.monotonic()
    try:
        job = job_for(m, pick.config, prof.resolved_target, f"profile {prof.name}", evaluator and evaluator.dataset())
        report = export_model(job.model, job.spec, job.target, out_dir / prof.name, job.data, progress=progress).report
    except OutputError:
        raise  # the output cannot be written (a full disk): an error of the run, not a failed gate
    except MetaforgeError as e:
        gate("export", "fail", str(e), time.monotonic() - t1)
        for g in ("parity", "accuracy"):
            gate(g, "not-run", "the export failed")
        return done(str(pick.config))
    secs = time.monotonic() - t1
    by_kind: dict[str, list[Check]] = {"export": [], "parity": [], "accuracy": [], "engine": []}
    for c in report.checks:
        kind = c.name.split(".")[0]
        kind = kind if kind in by_kind else ("engine" if c.name.startswith("tensorrt.engine") else "export")
        by_kind[kind].append(c)
    acc = report.accuracy.artifact
    floor_ok = acc >= b.accuracy_floor
    by_kind["accuracy"].append(Check("accuracy.floor", "pass" if floor_ok else "fail",
                                     f"{acc:.4f} on {report.n_samples} held-out samples vs floor {b.accuracy_floor}"))
    for kind, checks in by_kind.items():
        if not checks:
            continue
        statuses = {c.status for c in checks}
        status = "fail" if "fail" in statuses else ("pass" if "pass" in statuses else "not-run")
        gate(kind, status, "; ".join(f"[{c.status}] {c.name}: {c.detail}" for c in checks), secs if kind == "export" else 0.0)
    return done(str(pick.config), report)


def _budget_status(value: float, limit: float | None) -> str:
    return "pass" if limit is None or value <= limit else "fail"


def _label(source: str) -> str:
    return "measured here" if source == "measured" else f"predicted: {source}"


def exit_code(runs: list[ProfileRun]) -> int:
    failed = {g.gate for r in runs for g in r.gates if g.status == "fail"}
    for code in (4, 2, 3):
        if any(EXIT_CODES[g] == code for g in failed):
            return code
    return 0


def to_json(runs: list[ProfileRun]) -> dict:
    return {
        "schema": "metaforge.check/1",
        "exit_code": exit_code(runs),
        "profiles": [{"profile": r.profile, "target": r.target, "config": r.config,
                      "gates": [asdict(g) for g in r.gates], "report": r.report and r.report.to_dict()} for r in runs],
    }


def write_json(runs: list[ProfileRun], path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(to_json(runs), indent=2) + "\n")


def write_junit(runs: list[ProfileRun], path: str | Path) -> Path:
    """One test case per profile x gate; not-run gates are skipped, never passed."""
    gates = [g for r in runs for g in r.gates]
    suite = ET.Element("testsuite", name="metaforge-check", tests=str(len(gates)),
                       failures=str(sum(g.status == "fail" for g in gates)),
                       skipped=str(sum(g.status == "not-run" for g in gates)),
                       time=f"{sum(g.seconds for g in gates):.3f}")
    for g in gates:
        case = ET.SubElement(suite, "testcase", classname=f"metaforge.{g.profile}", name=g.gate, time=f"{g.seconds:.3f}")
        if g.status == "fail":
            ET.SubElement(case, "failure", message=g.detail[:500]).text = g.detail
        elif g.status == "not-run":
            ET.SubElement(case, "skipped", message=g.detail[:500])
        else:
            ET.SubElement(case, "system-out").text = g.detail
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return atomic_write_text(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
