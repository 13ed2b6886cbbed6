"""``build_bundle``: the folder to copy to a device: models, held-out samples, references, manifest, runner.

The models come from the export pipeline (each one exported and gated against PyTorch here first,
its ``report.json`` kept beside it); the samples are the dataset's held-out test split (all of it
when it has fewer than ``samples``) with every model's PyTorch logits as the reference. The folder
is built in a temp dir beside ``out`` and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from metaforge.bundle import MANIFEST_SCHEMA, BundleError
from metaforge.io import ensure_writable, write_error
from metaforge.profiles import Profile
from metaforge.progress import Progress
from metaforge.space import ArchConfig

if TYPE_CHECKING:
    from metaforge.manifold import Manifold

RUNNER = Path(__file__).with_name("runner.py")
RUN_BACKENDS = Path(__file__).with_name("run_backends.py")  # the runner's runtimes, imported from beside run.py
TRT_DEVICE = Path(__file__).parent.parent / "export" / "trt_device.py"  # run.py's TensorRT 8/10/11 part, copied beside it
RUNNER_FILES = (RUN_BACKENDS, TRT_DEVICE)  # what run.py imports from beside itself


def install_runner(folder: Path) -> None:
    """run.py and the modules it imports from its own folder, verbatim, into a bundle folder."""
    shutil.copyfile(RUNNER, folder / "run.py")
    for f in RUNNER_FILES:
        shutil.copyfile(f, folder / f.name)
    os.chmod(folder / "run.py", 0o755)


SAMPLES_FILE = "samples.npz"
MIN_SAMPLES = 1000


@dataclass(frozen=True)
class BundleOptions:
    """What goes into a bundle beside the pick."""

    sweep: int = 0  # more configs spread over the front (for ingest to calibrate on)
    samples: int = MIN_SAMPLES  # held-out samples with references (all of the split if it has fewer)
    warmup: int = 50  # the runner's defaults
    runs: int = 1000
    max_evals: int = 300  # of the fit run when no --fit document is given
    time_cap_s: float = 120.0

    def __post_init__(self) -> None:
        if self.sweep < 0 or self.samples < 1 or self.warmup < 0 or self.runs < 200:
            raise ValueError("sweep >= 0, samples >= 1, warmup >= 0 and runs >= 200 are required")


@dataclass
class Choice:
    pick: str
    sweep: list[str]
    source: str
    notes: list[str] = field(default_factory=list)
    fitted: dict[str, dict] = field(default_factory=dict)  # config -> the fit's latency entry


def spread(front: list[tuple[str, float]], n: int, exclude: str) -> list[str]:
    """``n`` configs of ``front`` ((config, predicted ms)) spaced evenly in log latency."""
    pool = sorted({c: ms for c, ms in front if c != exclude and ms > 0}.items(), key=lambda t: t[1])
    if n >= len(pool):
        return [c for c, _ in pool]
    lo, hi = math.log(pool[0][1]), math.log(pool[-1][1])
    chosen: list[str] = []
    for t in np.linspace(lo, hi, n):
        best = min((p for p in pool if p[0] not in chosen), key=lambda p: abs(math.log(p[1]) - t))
        chosen.append(best[0])
    return sorted(chosen, key=dict(pool).get)


def choose_configs(manifold: str | Path, prof: Profile, fit_json: str | Path | None, opts: BundleOptions,
                   progress: Progress, loaded: Manifold | None = None) -> Choice:
    """The pick and the sweep: from a fit document, else from a fit run now on the ``loaded`` manifold."""
    if fit_json is not None:
        from metaforge.fit.document import read_fit_document

        doc = read_fit_document(fit_json, manifold)
        if doc.profile != prof.name:
            raise BundleError(f"{fit_json} was fitted for profile {doc.profile}, not {prof.name}: "
                              f"fit again with --profile {prof.name}")
        pick = str(doc.pick.config)
        front = [(str(e.config), e.latency_ms) for e in doc.pareto]
        fitted = {str(e.config): {"value": e.latency_ms, "stat": e.latency_stat, "source": e.latency_source}
                  for e in (*doc.pareto, doc.pick)}
        return Choice(pick, spread(front, opts.sweep, pick), f"fit {fit_json}", fitted=fitted)
    from metaforge.fit import InfeasibleBudget, fit

    notes = []
    try:
        result = fit(loaded, prof, max_evals=opts.max_evals, time_cap_s=opts.time_cap_s, progress=progress)
    except InfeasibleBudget as e:
        result = e.result
        notes.append(f"no config met the budget with the predicted latency ({e}); bundled the nearest, to measure it")
    front = [(str(c.config), c.latency_ms) for c in result.pareto]
    pick = str(result.pick.config)
    fitted = {str(c.config): {"value": c.latency_ms, "stat": result.budget.latency_stat, "source": c.latency_source}
              for c in [*result.pareto, result.pick]}
    return Choice(pick, spread(front, opts.sweep, pick), f"profile {prof.name}", notes, fitted)


def predictions(prof: Profile, space, configs: list[str]) -> dict[str, dict]:
    """What metaforge predicts for each config on this profile now (fit's predictor: its table, else the roofline)."""
    from metaforge.fit import shapes
    from metaforge.fit.predict import predictor_for

    predict = predictor_for(prof)
    out = {}
    for c in configs:
        ls = shapes.layers(ArchConfig.parse(c), space)
        out[c] = {"p50": predict(ls, "p50"), "p90": predict(ls, "p90"), "source": predict.source,
                  **({"table": str(predict.table_path)} if predict.table is not None else {})}
    return out


def build_bundle(manifold: str | Path, profile: str | Path, out: str | Path, *, fit_json: str | Path | None = None,
                 options: BundleOptions | None = None, force: bool = False, progress: Progress | None = None) -> Path:
    """Write the bundle folder ``out`` for ``profile``; returns its path."""
    from metaforge.checkpoint import load_manifold, read_header
    from metaforge.profiles import load_profile

    opts, progress, out = options or BundleOptions(), progress or Progress(), Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out} exists and is not empty; choose another --out or pass --force to replace it")
    ensure_writable(out, folder=True)  # before the fit and the exports, which take a while
    prof = load_profile(profile)
    read_header(manifold)  # a bad manifold is named as such before its fit document is read
    if fit_json is not None:
        choice = choose_configs(manifold, prof, fit_json, opts, progress)
        loaded = load_manifold(manifold)
    else:
        loaded = load_manifold(manifold)
        choice = choose_configs(manifold, prof, None, opts, progress, loaded)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise BundleError(f"cannot write {out}: {e.strerror}; choose a writable --out") from None
    try:
        manifest = _fill(tmp, manifold, loaded, prof, choice, opts, progress)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        install_runner(tmp)
        (tmp / "README.txt").write_text(_readme(manifest))
        os.chmod(tmp, 0o755)
        _replace(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise write_error(out, e) from None
        raise
    return out


def _fill(tmp: Path, manifold: str | Path, m, prof: Profile, choice: Choice, opts: BundleOptions, progress: Progress) -> dict:
    """Export every model of the loaded manifold ``m`` into ``tmp/models``, write the samples; return the manifest."""
    import metaforge
    from metaforge.deploy.job import job_for
    from metaforge.export import GateFailed
    from metaforge.export.pipeline import export_model, reference_logits

    target = prof.resolved_target
    configs = [("pick", choice.pick)] + [(f"s{i + 1:02d}", c) for i, c in enumerate(choice.sweep)]
    space, ds = m.space, m.dataset()
    predicted = predictions(prof, space, [c for _, c in configs])
    models, refs = [], {}
    progress.phase("exporting bundle models", len(configs))
    for i, (mid, cfg) in enumerate(configs):
        job = job_for(m, ArchConfig.parse(cfg), target, choice.source, ds)
        res = export_model(job.model, job.spec, job.target, tmp / "models" / mid, job.data, progress=progress)
        if not res.passed:
            raise GateFailed.from_report(res.report, res.report_path)
        if i == 0:
            data = job.data
            n = min(opts.samples, len(data.heldout))
            x = data.norm.apply(data.heldout.images[:n])
        refs[f"ref_{mid}"] = reference_logits(job.model, x).astype(np.float32)
        art = res.report.artifact
        models.append({
            "id": mid, "role": "pick" if mid == "pick" else "sweep", "config": cfg, "format": target.format,
            "precision": res.report.precision, **model_files(res.artifact, tmp),
            "layout": art.layout, "batch": art.batch if isinstance(art.batch, int) else None,
            "inputs": art.inputs, "outputs": art.outputs,
            "predicted": {**predicted[cfg], "fit": choice.fitted.get(cfg)},
            "host_check": {"passed": res.passed, "parity": dataclasses.asdict(res.report.parity),
                           "accuracy": res.report.accuracy.artifact},
        })
        progress.advance()
    labels = data.heldout.labels[:n].numpy().astype(np.int64)
    np.savez(tmp / SAMPLES_FILE, x=x.numpy().astype(np.float32), labels=labels, **refs)
    of = len(data.heldout)
    note = (f"all {of} held-out test images (the split has fewer than {opts.samples})" if n == of and of < opts.samples
            else f"the first {n} of {of} held-out test images")
    ident = hashlib.sha256(json.dumps([m["sha256"] for m in models] + [time.time()]).encode()).hexdigest()[:16]
    t = target
    return {
        "schema": MANIFEST_SCHEMA, "bundle_id": ident, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metaforge_version": metaforge.__version__, "manifold": Path(manifold).name, "source": choice.source,
        "profile": prof.name, "batch": prof.batch, "threads": prof.device.threads,
        "ort_optimization": prof.device.ort_optimization,
        "target": {"name": t.name, "format": t.format, "precision": t.precision, "runtime": t.runtime,
                   "tolerances": dataclasses.asdict(t.tolerances),
                   "tensorrt_version": t.tensorrt_version, "workspace_mb": t.workspace_mb, "batch": t.batch},
        "budget": dataclasses.asdict(prof.budget), "space": space.to_dict(),
        "samples": {"file": SAMPLES_FILE, "n": int(n), "split": data.heldout_name, "of": of, "note": note,
                    "x": "normalised float32 N x C x H x W", "references": "PyTorch logits of the materialised model, key ref_<id>"},
        "latency": {"warmup": opts.warmup, "runs": opts.runs},
        "notes": choice.notes,
        "models": models,
    }


def model_files(artifact: Path, root: Path) -> dict:
    """``file`` and ``sha256`` of the model run.py loads: for TensorRT always the ONNX, which it parses. An
    engine built here goes beside it as ``engine`` with its TensorRT version; run.py loads it only
    on a device with exactly that version."""
    from metaforge.io import file_sha256

    artifact = Path(artifact)
    model = artifact.with_name("model.onnx") if artifact.suffix == ".engine" else artifact
    entry = {"file": str(model.relative_to(root)), "sha256": file_sha256(model)}
    if artifact.suffix == ".engine":
        from metaforge.export.tensorrt_engine import engine_version

        entry["engine"] = {"file": str(artifact.relative_to(root)), "sha256": file_sha256(artifact),
                           "tensorrt_version": engine_version(artifact)}
    return entry


def _replace(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``; an old ``out`` is moved aside first, then removed."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _readme(m: dict) -> str:
    runtime = {"onnx": "onnxruntime", "tflite": "tflite_runtime or ai_edge_litert",
               "tensorrt": "TensorRT Python bindings with pycuda or cuda-python"}[m["target"]["format"]]
    return (f"metaforge bundle {m['bundle_id']} for profile {m['profile']} ({m['target']['name']})\n\n"
            f"Copy this folder to the device and run, with the device's own python3, numpy and {runtime}:\n\n"
            f"    python3 run.py            # --help for options; writes results.json\n\n"
            f"Then, back on the machine with metaforge:\n\n"
            f"    metaforge profile ingest results.json --profile {m['profile']} --out {m['profile']}.table.json\n"
            f"    metaforge fit MANIFOLD --profile {m['profile']} --table {m['profile']}.table.json\n")
