"""Device bundles end to end: bundle -> run.py in a subprocess (real onnxruntime / ai-edge-litert)
-> profile ingest -> fit uses the ingested table. Plus the runner's Python 3.6 compatibility."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metaforge.bundle import BundleError
from metaforge.bundle.build import RUN_BACKENDS, RUNNER, BundleOptions, build_bundle, spread
from metaforge.bundle.ingest import ingest
from metaforge.errors import ConfigError

FAST = dict(max_evals=8, time_cap_s=30.0)
RUN = ("--runs", "200", "--warmup", "10")


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metaforge", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def main(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (torch is already imported): exit code, stdout, stderr."""
    from metaforge.cli import main as entry

    capsys.readouterr()
    try:
        entry(list(args))
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def run_bundle(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    """The runner as the device runs it: its own process, started in the bundle, nothing but run.py's imports."""
    return subprocess.run([sys.executable, "run.py", *RUN, *extra], capture_output=True, text=True, cwd=folder, timeout=300)


def fit_doc(manifold: Path, profile: str, path: Path, table: Path | None = None) -> dict:
    from metaforge.fit import fit
    from metaforge.fit.document import FitDocument

    doc = FitDocument.of(fit(manifold, profile, table=table, **FAST))
    doc.write(path)
    return doc.to_dict()


@pytest.fixture(scope="module")
def host(tiny_run, tmp_path_factory):
    """A host-cpu (ONNX) bundle with a sweep of 2, written by the CLI, and run here in onnxruntime."""
    path, _, _ = tiny_run
    tmp = tmp_path_factory.mktemp("host")
    fit_doc(path, "host-cpu", tmp / "fit.json")
    r = cli("bundle", "--manifold", str(path), "--profile", "host-cpu", "--fit", str(tmp / "fit.json"), "--sweep", "2",
            "--out", str(tmp / "bundle"))
    assert r.returncode == 0, r.stderr
    run = run_bundle(tmp / "bundle")
    return tmp, run


@pytest.fixture(scope="module")
def pi(tiny_run, tmp_path_factory):
    """A raspberry-pi-4 (TFLite full-integer int8) bundle of the pick, run here in ai-edge-litert."""
    path, _, _ = tiny_run
    tmp = tmp_path_factory.mktemp("pi")
    fit_doc(path, "raspberry-pi-4", tmp / "fit.json")
    build_bundle(path, "raspberry-pi-4", tmp / "bundle", fit_json=tmp / "fit.json", options=BundleOptions(runs=200))
    return tmp, run_bundle(tmp / "bundle")


def test_bundle_holds_models_samples_and_references_of_the_pytorch_model(host, tiny_run):
    tmp, _ = host
    _, manifold, _ = tiny_run
    b = tmp / "bundle"
    m = json.loads((b / "manifest.json").read_text())
    fit = json.loads((tmp / "fit.json").read_text())
    assert [x["role"] for x in m["models"]] == ["pick", "sweep", "sweep"]
    assert m["models"][0]["config"] == fit["config"]
    assert {x["config"] for x in m["models"][1:]} <= {e["config"] for e in fit["pareto"]}
    assert (b / "run.py").read_text() == RUNNER.read_text()
    assert (b / "run_backends.py").read_text() == RUN_BACKENDS.read_text()
    assert not list(tmp.glob(".bundle.*")), "the temp build folder was left behind"
    # digits has 359 test images, fewer than 1000: all of them, and the manifest says so
    assert m["samples"]["n"] == m["samples"]["of"] == 359 and "all 359" in m["samples"]["note"]
    s = np.load(b / "samples.npz")
    assert s["x"].shape == (359, 1, 8, 8) and s["x"].dtype == np.float32 and s["labels"].shape == (359,)
    for model in m["models"]:
        assert (b / model["file"]).is_file() and model["file"].endswith(".onnx")
        net = manifold.materialize(model["config"]).eval()
        with torch.no_grad():
            ref = net(torch.from_numpy(s["x"])).numpy()
        np.testing.assert_allclose(s[f"ref_{model['id']}"], ref, atol=1e-5)
        assert model["predicted"]["source"] == "roofline" and model["predicted"]["p50"] > 0


def test_runner_measures_and_checks_in_onnxruntime(host):
    tmp, run = host
    assert run.returncode == 0, run.stderr
    res = json.loads((tmp / "bundle" / "results.json").read_text())
    assert res["schema"] == "metaforge.bundle-results/1" and res["profile"] == "host-cpu"
    dev = res["device"]
    assert dev["model"] and dev["python"] == ".".join(map(str, sys.version_info[:3])) and "clocks" in dev and "cpu" in dev["clocks"]
    assert len(res["models"]) == 3
    for m in res["models"]:
        lat = m["latency"]
        assert lat["runs"] == 200 and lat["warmup"] == 10 and lat["batch"] == 1
        assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert m["backend"] == "onnxruntime" and m["runtime_version"]
        assert m["passed"] and m["parity"]["max_abs_diff"] <= 1e-4 and m["parity"]["top1_agreement"] == 1.0
        assert m["accuracy"]["artifact"] == m["accuracy"]["reference"] and m["n_samples"] == 359
        assert {c["name"] for c in m["checks"]} == {"parity.max_abs_diff", "parity.top1_agreement"}


def test_ingest_then_fit_uses_the_measured_table(host, tiny_run, capsys):
    tmp, _ = host
    path, _, _ = tiny_run
    code, out, err = main(capsys, "profile", "ingest", str(tmp / "bundle" / "results.json"), "--profile", "host-cpu",
                          "--out", str(tmp / "table.json"))
    assert code == 0, err
    assert "before" in out and "leave-one-out" in out and "mean |error|" in out
    doc = json.loads((tmp / "table.json").read_text())
    assert doc["schema"] == "metaforge-latency-table/1" and doc["basis"].startswith("roofline")
    rows = doc["ingested"]["rows"]
    assert len(rows) == 3 and all(row["loo"] is not None for row in rows)
    rms = lambda k: np.sqrt(np.mean([((row[k] - row["measured"]) / row["measured"]) ** 2 for row in rows]))  # noqa: E731
    assert rms("after") <= rms("before")  # the fitted family contains the prediction it replaces
    fit = fit_doc(path, "host-cpu", tmp / "fit2.json", table=tmp / "table.json")
    assert fit["latency_ms"]["source"] == "table" and all(e["latency_ms"]["source"] == "table" for e in fit["pareto"])
    assert fit["latency_table"] == str(tmp / "table.json")
    measured = {m["config"]: m["latency"]["p50_ms"] for m in json.loads((tmp / "bundle" / "results.json").read_text())["models"]}
    if fit["config"] in measured:  # the table now predicts what the device measured (within the fit's residual)
        assert fit["latency_ms"]["value"] == pytest.approx(measured[fit["config"]], rel=0.5)


def test_runner_handles_int8_tflite_in_litert(pi, tiny_run):
    tmp, run = pi
    assert run.returncode == 0, run.stderr
    m = json.loads((tmp / "bundle" / "manifest.json").read_text())
    assert m["models"][0]["file"].endswith(".tflite") and m["models"][0]["inputs"][0]["dtype"] == "int8"
    res = json.loads((tmp / "bundle" / "results.json").read_text())
    (entry,) = res["models"]
    assert entry["backend"] in ("tflite_runtime", "ai_edge_litert") and entry["passed"]
    if entry["backend"] == "ai_edge_litert":
        assert "tflite_runtime is not installed" in entry["missing"]  # the device's name is tried first
    # int8 in and out: the runner quantised the input and dequantised the logits with the file's scale
    assert entry["parity"]["sqnr_db"] >= 15 and entry["parity"]["top1_agreement"] >= 0.9
    assert entry["accuracy"]["artifact"] >= 0.99 * entry["accuracy"]["reference"]
    r = ingest(tmp / "bundle" / "results.json", "raspberry-pi-4", out=tmp / "pi.table.json")
    assert r.method["p90"].startswith("scale only")  # one network: a ratio, no offset
    assert r.rows[0].after == pytest.approx(r.rows[0].measured, rel=1e-6)
    path, _, _ = tiny_run
    fit = fit_doc(path, "raspberry-pi-4", tmp / "fit2.json", table=tmp / "pi.table.json")
    assert fit["latency_ms"]["source"] == "table"


def test_sweep_spreads_over_the_front_in_log_latency():
    front = [(f"c{i}", ms) for i, ms in enumerate([0.01, 0.011, 0.012, 0.02, 0.04, 0.08, 0.081, 0.16])]
    got = spread(front, 3, exclude="c7")
    assert got == ["c0", "c4", "c6"]  # both ends of the front without the pick, and the nearest to the log-midpoint
    assert spread(front, 20, exclude="c0") == [c for c, _ in front[1:]]  # fewer than asked: all of them
    assert spread(front, 0, exclude="c0") == []


def test_runner_parity_agrees_with_the_export_checks():
    from metaforge.export.gates import parity

    spec = importlib.util.spec_from_file_location("bundle_runner", RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((50, 10)).astype(np.float32)
    out = ref + 0.1 * rng.standard_normal((50, 10)).astype(np.float32)
    assert runner.parity(ref, out) == parity(ref, out).__dict__


@pytest.mark.parametrize("path", [RUNNER, RUN_BACKENDS], ids=["run.py", "run_backends.py"])
def test_runner_source_is_python36(path):
    src = path.read_text()
    ast.parse(src, feature_version=(3, 6))  # the 3.6 grammar: no walrus, no positional-only, no match
    tree = ast.parse(src)
    top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom)}
    allowed = {"argparse", "glob", "json", "math", "os", "platform", "shutil", "subprocess", "sys", "time", "traceback", "numpy"}
    assert top <= allowed | {"run_backends"}
    for banned in ("capture_output", "text=True", "dataclass", "__future__", "importlib.metadata", "default_rng", "f\"{", "=}"):
        assert banned not in src, banned
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).is_file():
        pytest.skip("vermin is not installed")
    r = subprocess.run([vermin, "-t=3.6-", "--no-tips", "--violations", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def nano(tiny_run, tmp_path_factory):
    """A jetson-nano (TensorRT fp16) bundle: the ONNX prepared for TensorRT 8.2, the engine built on the device."""
    path, _, _ = tiny_run
    tmp = tmp_path_factory.mktemp("nano")
    return build_bundle(path, "jetson-nano", tmp / "bundle", options=BundleOptions(sweep=1, **FAST))  # fitted now


def test_jetson_bundle_says_what_is_missing_and_ingest_refuses_other_runtimes(nano, tmp_path):
    b = nano
    m = json.loads((b / "manifest.json").read_text())
    assert m["target"]["format"] == "tensorrt" and m["models"][0]["file"].endswith("model.onnx")
    assert m["source"] == "profile jetson-nano" and m["models"][0]["predicted"]["fit"]["stat"] == "p90"
    assert (b / "models" / "pick" / "build_engine.sh").is_file()
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        r = run_bundle(b, "--out", str(tmp_path / "r.json"))  # no TensorRT here: not measured, and why
        assert r.returncode == 1
        entries = json.loads((tmp_path / "r.json").read_text())["models"]
        assert [e["role"] for e in entries] == ["pick", "sweep"]
        assert all("tensorrt (Python bindings) is not installed" in e["error"] and "latency" not in e for e in entries)
        with pytest.raises(BundleError, match="has no measured model"):
            ingest(tmp_path / "r.json", "jetson-nano", out=tmp_path / "t.json")
    r = run_bundle(b, "--backend", "onnxruntime", "--out", str(tmp_path / "ort.json"))  # the same ONNX, to check parity
    assert r.returncode == 0, r.stderr
    with pytest.raises(BundleError, match="timed in onnxruntime, not in the profile's runtime"):
        ingest(tmp_path / "ort.json", "jetson-nano", out=tmp_path / "t.json")


def test_runner_runs_under_a_real_python36(nano, tmp_path):
    """JetPack 4.6's Python: set METAFORGE_TEST_PY36 to a python3.6 with numpy and onnxruntime (<= 1.10, opset <= 15)."""
    py36 = os.environ.get("METAFORGE_TEST_PY36")
    if not py36:
        pytest.skip("set METAFORGE_TEST_PY36 to a Python 3.6 interpreter with numpy and onnxruntime")
    r = subprocess.run([py36, "run.py", *RUN, "--backend", "onnxruntime", "--out", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=nano, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["device"]["python"].startswith("3.6.")
    assert all(m["passed"] and m["latency"]["runs"] == 200 for m in res["models"])


def test_tensorrt_branch_builds_and_times_an_engine(tiny_run, tmp_path):
    pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")
    path, _, _ = tiny_run
    b = build_bundle(path, "jetson-nano", tmp_path / "bundle", fit_json=None, options=BundleOptions(runs=200, **FAST))
    r = run_bundle(b, "--backend", "tensorrt")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads((b / "results.json").read_text())["models"]
    assert entry["backend"] == "tensorrt" and entry["passed"] and list(b.glob("timing.trt*.cache"))


def test_bad_inputs_are_one_line_errors(pi, host, tiny_run, tmp_path, capsys):
    code, _, err = main(capsys, "profile", "ingest", str(tmp_path / "nope.json"), "--profile", "host-cpu")
    assert code == 2 and err.count("\n") == 1 and "cannot read results" in err and "run.py" in err
    code, _, err = main(capsys, "profile", "ingest", str(pi[0] / "bundle" / "results.json"), "--profile", "host-cpu",
                        "--out", str(tmp_path / "t.json"))
    assert code == 2 and "profile raspberry-pi-4, not host-cpu" in err and not (tmp_path / "t.json").exists()
    code, _, err = main(capsys, "bundle", "--manifold", "x.safetensors", "--profile", "host-cpu", "--out", str(host[0] / "bundle"))
    assert code == 2 and "exists and is not empty" in err and "--force" in err
    code, _, err = main(capsys, "bundle", "--manifold", "x.safetensors", "--profile", "host-cpu", "--out", str(tmp_path / "b"),
                        "--runs", "10")
    assert code == 2 and "runs >= 200" in err and not (tmp_path / "b").exists()
    with pytest.raises(BundleError, match="fitted for profile raspberry-pi-4, not host-cpu"):
        build_bundle(tiny_run[0], "host-cpu", tmp_path / "b2", fit_json=pi[0] / "fit.json")
    bad = tmp_path / "bad-fit.json"
    bad.write_text(json.dumps({**json.loads((host[0] / "fit.json").read_text()), "config": "w=99,99,99 d=1,1,1", "pareto": []}))
    with pytest.raises(ConfigError, match="outside this manifold's space"):
        build_bundle(tiny_run[0], "host-cpu", tmp_path / "b3", fit_json=bad)
    assert not (tmp_path / "b3").exists() and not list(tmp_path.glob(".b3.*")), "a failed bundle left files behind"
    r = run_bundle(host[0] / "bundle", "--runs", "50")
    assert r.returncode == 2 and "at least 200" in r.stderr
