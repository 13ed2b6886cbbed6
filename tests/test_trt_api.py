"""API-conformance tests of the TensorRT path: run.py (with trt_device.py) and
metaforge.export.tensorrt_engine against doubles of the TensorRT 8.2, 10.x and 11.0 Python bindings,
pycuda and cuda-python (tests/trt_api: each restricted to its release's names and argument names).

What these prove: every call the runner and the host builder make exists, with those arguments, in
the release they dispatch to; results that signal failure are checked; the ONNX is what gets parsed;
int8 needs no calibrator; the timing cache is per version. What they do not prove: that an engine
builds or computes anything on a GPU. The doubles' engines output zeros (so the parity gates fail,
by design); a real TensorRT engine build is not run here and stays "not run" in every report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from metaforge.bundle.build import RUNNER, TRT_DEVICE, install_runner, model_files

sys.path.insert(0, str(Path(__file__).parent))
import trt_api  # noqa: E402
from trt_api import trt10, trt11, trt82  # noqa: E402

PY36 = os.environ.get("METAFORGE_TEST_PY36", "/root/.pyenv/versions/3.6.15/bin/python")
VERSIONS = {"8.2": "8.2.1.8", "10": "10.8.0.43", "11": "11.0.0.114"}
CUDA_OF = {"8.2": "pycuda", "10": "cuda-python", "11": "cuda-python"}


def onnx_model(path: Path, qdq: bool = False) -> Path:
    """input [1,1,8,8] -> (QuantizeLinear -> DequantizeLinear) -> Flatten -> Gemm -> logits [1,10]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((64, 10)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(10, np.float32), "b")]
    nodes, x = [], "input"
    if qdq:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]), helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"])]
        x = "dq"
    nodes += [helper.make_node("Flatten", [x], ["flat"]), helper.make_node("Gemm", ["flat", "w", "b"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_bundle(folder: Path, precision: str = "fp16", qdq: bool | None = None, **model) -> Path:
    """A bundle as build.py lays it out (run.py and its modules, manifest, samples, models/pick/model.onnx)."""
    onnx_model(folder / "models" / "pick" / "model.onnx", qdq=precision == "int8" if qdq is None else qdq)
    rng = np.random.default_rng(1)
    np.savez(folder / "samples.npz", x=rng.standard_normal((5, 1, 8, 8)).astype(np.float32),
             labels=np.arange(5, dtype=np.int64), ref_pick=rng.standard_normal((5, 10)).astype(np.float32))
    entry = {"id": "pick", "role": "pick", "config": "w=8,16,32 d=1,1,1", "format": "tensorrt", "precision": precision,
             "file": "models/pick/model.onnx", "predicted": None, **model}
    manifest = {"bundle_id": "test", "profile": "test", "batch": 1, "threads": 0, "space": {},
                "target": {"name": "t", "format": "tensorrt", "precision": precision, "workspace_mb": 64,
                           "tolerances": {"max_abs_diff": 0.1, "top1_agreement": None, "sqnr_db": None, "int8_accuracy_ratio": None}},
                "samples": {"file": "samples.npz"}, "latency": {"warmup": 2, "runs": 200}, "models": [entry]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    install_runner(folder)
    return folder


def run_double(bundle: Path, release: str, python: str = sys.executable, cuda: str | None = None, path: str = "", **env: str):
    """run.py in its own process with the doubles (then ``path``) on its path: (process, the model's entry, the calls logged)."""
    site = trt_api.install(str(bundle.parent / f"site-{release}"), release, cuda or CUDA_OF[release])
    log = bundle.parent / f"calls-{release}.jsonl"
    log.unlink(missing_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    full.update(PYTHONPATH=os.pathsep.join(filter(None, [site, path])), TRT_DOUBLE_LOG=str(log), **env)
    out = bundle / "results.json"
    proc = subprocess.run([python, "run.py", "--runs", "200", "--warmup", "2", "--backend", "tensorrt", "--out", str(out)],
                          cwd=bundle, env=full, capture_output=True, text=True, timeout=300)
    entry = json.loads(out.read_text())["models"][0] if out.is_file() else None
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    return proc, entry, calls


def events(calls: list[dict], name: str) -> list[dict]:
    return [c for c in calls if c["event"] == name]


def measured(proc, entry, release: str, samples: int = 5) -> None:
    """Ran to the end in the double: timed, gated (the zeros fail parity by design), not an error."""
    assert entry is not None and "error" not in entry, proc.stderr + (entry or {}).get("traceback", "")
    assert proc.returncode == 2 and "GATE FAILED" in proc.stderr  # the double's zeros, not TensorRT's numbers
    assert entry["backend"] == "tensorrt" and entry["runtime_version"] == VERSIONS[release]
    assert entry["latency"]["runs"] == 200 and entry["latency"]["batch"] == 1 and entry["n_samples"] == samples


def test_api_conformance_doubles_lack_what_each_release_lacks():
    logger = trt10.Logger(trt10.Logger.WARNING)
    with pytest.raises(AttributeError):
        trt10.Builder(logger).create_builder_config().max_workspace_size = 1  # removed in 10
    for missing in ("num_bindings", "get_binding_shape"):
        assert not hasattr(trt10.ICudaEngine, missing)
    assert not hasattr(trt10.IExecutionContext, "execute_async_v2") and not hasattr(trt10, "Int8EntropyCalibrator")
    assert not hasattr(trt82, "MemoryPoolType") and not hasattr(trt82.ICudaEngine, "num_io_tensors")
    assert not hasattr(trt82.IBuilderConfig, "set_memory_pool_limit") and not hasattr(trt82.IExecutionContext, "execute_async_v3")
    for name in ("FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"):
        assert not hasattr(trt11.BuilderFlag, name)
    assert not hasattr(trt11.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") and not hasattr(trt11, "IInt8EntropyCalibrator2")
    assert not hasattr(trt11.IBuilderConfig, "int8_calibrator") and not hasattr(trt11.Builder, "platform_has_fast_fp16")
    with pytest.raises(AttributeError):
        trt11.Builder(trt11.Logger()).create_builder_config().int8_calibrator = None
    for name in ("device_memory_size", "num_bindings", "get_binding_shape"):  # 11 removed device_memory_size*
        assert not hasattr(trt11.ICudaEngine, name)
    assert not hasattr(trt11.IExecutionContext, "execute_async_v2") and not hasattr(trt11.Builder, "platform_has_fast_int8")
    context = trt82.IExecutionContext(None)
    with pytest.raises(TypeError):
        context.execute_async_v2(bindings=[1, 2], stream=0)  # the binding's keyword is stream_handle
    with pytest.raises(AttributeError):
        trt82.nonexistent_call  # noqa: B018


def test_api_conformance_trt11_keeps_strongly_typed_as_an_ignored_flag():
    """11.0's bindings still bind NetworkDefinitionCreationFlag.STRONGLY_TYPED (deprecated, ignored: every
    network is strongly typed; 11.0.0 Python API reference, Builder page); EXPLICIT_BATCH is gone. A network
    created with it builds like one created with 0; a bit that names no 11.0 flag is refused."""
    logger = trt11.Logger(trt11.Logger.WARNING)
    builder = trt11.Builder(logger)
    assert {f.name for f in trt11.NetworkDefinitionCreationFlag} == {"STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS",
                                                                       "PREFER_JIT_PYTHON_PLUGINS"}
    onnx_bytes = make_bundle_onnx_bytes()
    for flags, built in ((0, True), (1 << int(trt11.NetworkDefinitionCreationFlag.STRONGLY_TYPED), True), (1 << 7, False)):
        network = builder.create_network(flags)
        assert trt11.OnnxParser(network, logger).parse(onnx_bytes)
        serialized = builder.build_serialized_network(network, builder.create_builder_config())
        assert (serialized is not None) == built, flags
    assert trt11.__version__ == "11.0.0.114"  # include/NvInferVersion.h at the 11.0 GA commit


def make_bundle_onnx_bytes() -> bytes:
    """A fixed-shape ONNX ModelProto (one Relu) as bytes, for calling a double's parser directly."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["out"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_api_conformance_trt82_bindings_and_execute_async_v2(tmp_path, precision):
    proc, entry, calls = run_double(make_bundle(tmp_path / "b", precision), "8.2")
    measured(proc, entry, "8.2")
    assert [c["flags"] for c in events(calls, "create_network")] == [1]  # EXPLICIT_BATCH, needed for ONNX in 8.x
    assert events(calls, "max_workspace_size")[0]["value"] == 64 << 20
    assert [c["flag"] for c in events(calls, "set_flag")] == [precision.upper()]
    assert events(calls, "execute_async_v2") and not events(calls, "nptype")  # trt.nptype: np.bool on <= 8.4
    assert events(calls, "pycuda.mem_alloc") and not events(calls, "cudaMalloc")
    assert (tmp_path / "b" / "timing.trt8.2.1.8.cache").is_file() and not (tmp_path / "b" / "timing.cache").exists()


def test_api_conformance_int8_is_explicit_quantisation_without_calibrator(tmp_path):
    """No calibration.npy and no calibrator: the QDQ ONNX carries the scales, on 8.2, 10 and 11."""
    for release in ("8.2", "10", "11"):
        proc, entry, calls = run_double(make_bundle(tmp_path / release, "int8"), release)
        measured(proc, entry, release)
        assert not events(calls, "int8_calibrator") and not events(calls, "calibration")
        assert "QuantizeLinear" in events(calls, "parse")[0]["ops"]
        assert [c["flag"] for c in events(calls, "set_flag")] == ([] if release == "11" else ["INT8"])


def test_api_conformance_int8_without_qdq_nodes_is_refused(tmp_path):
    proc, entry, calls = run_double(make_bundle(tmp_path / "b", "int8", qdq=False), "10")
    assert proc.returncode == 1 and "int8 needs a QDQ ONNX" in entry["error"] and not events(calls, "build")


def test_api_conformance_trt82_under_python36(tmp_path):
    """JetPack 4.6's Python 3.6 with numpy 1.19 and pycuda: run.py and trt_device.py end to end."""
    if not Path(PY36).is_file():
        pytest.skip(f"no Python 3.6 at {PY36} (set METAFORGE_TEST_PY36)")
    if subprocess.run([PY36, "-c", "import numpy"], capture_output=True).returncode != 0:
        pytest.skip(f"{PY36} has no numpy (pip install numpy==1.19.5 for it)")
    proc, entry, calls = run_double(make_bundle(tmp_path / "b", "fp16"), "8.2", python=PY36)
    measured(proc, entry, "8.2")
    assert json.loads((tmp_path / "b" / "results.json").read_text())["device"]["python"].startswith("3.6.")
    assert events(calls, "execute_async_v2") and events(calls, "pycuda.memcpy_dtoh_async")


def test_api_conformance_trt82_with_a_numpy_without_np_bool(tmp_path):
    """TensorRT <= 8.4's trt.nptype needs np.bool, gone in numpy 1.24 to 1.26: run.py must not use it."""
    numpy_dir = os.environ.get("METAFORGE_TEST_NUMPY_NO_BOOL")  # e.g. pip install --target DIR numpy==1.26.4
    if not numpy_dir:
        pytest.skip("set METAFORGE_TEST_NUMPY_NO_BOOL to a folder with numpy 1.24-1.26 for this Python")
    probe = subprocess.run([sys.executable, "-c", "import numpy; print(hasattr(numpy, 'bool'))"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": numpy_dir})
    assert probe.stdout.strip() == "False", "that numpy has np.bool"
    proc, entry, _ = run_double(make_bundle(tmp_path / "b", "fp16"), "8.2", path=numpy_dir)
    measured(proc, entry, "8.2")


@pytest.mark.parametrize("release", ["10", "11"])
def test_api_conformance_named_tensors_and_execute_async_v3(tmp_path, release):
    proc, entry, calls = run_double(make_bundle(tmp_path / "b", "fp16"), release)
    measured(proc, entry, release)
    assert [c["flags"] for c in events(calls, "create_network")] == [0]
    assert events(calls, "set_memory_pool_limit")[0] == {"event": "set_memory_pool_limit", "pool": "WORKSPACE", "pool_size": 64 << 20}
    assert [c["flag"] for c in events(calls, "set_flag")] == (["FP16"] if release == "10" else [])
    assert events(calls, "execute_async_v3") and events(calls, "cudaMemcpyAsync") and not events(calls, "nptype")
    if release == "11":
        assert any("strongly typed" in n for n in entry["notes"])


@pytest.mark.parametrize("release, cuda", [("10", "pycuda"), ("8.2", "cuda-python")])
def test_api_conformance_the_other_cuda_library_is_used_when_the_first_is_absent(tmp_path, release, cuda):
    proc, entry, calls = run_double(make_bundle(tmp_path / "b"), release, cuda=cuda)
    measured(proc, entry, release)
    assert events(calls, "pycuda.mem_alloc" if cuda == "pycuda" else "cudaMalloc")


@pytest.mark.parametrize("version", ["9.1.0", "7.1.3.0", "12.0.0"])
def test_api_conformance_other_releases_are_refused_in_one_line(tmp_path, version):
    proc, entry, calls = run_double(make_bundle(tmp_path / "b"), "10", TRT_DOUBLE_VERSION=version)
    assert proc.returncode == 1 and entry["traceback"] is None and not events(calls, "create_network")
    assert entry["error"] == (f"Unsupported: TensorRT {version} is not supported: run.py drives TensorRT 8.x (8.2 or later), "
                              "10.x or 11.x; install one of those")


@pytest.mark.parametrize("fail, message", [("execute", "execute_async_v3 returned False"),
                                           ("timing_cache", "refused the timing cache")])
def test_api_conformance_failures_reported_by_tensorrt_are_raised(tmp_path, fail, message):
    proc, entry, _ = run_double(make_bundle(tmp_path / "b"), "10", TRT_DOUBLE_FAIL=fail)
    assert proc.returncode == 1 and message in entry["error"] and "latency" not in entry


def test_api_conformance_timing_cache_is_one_file_per_version(tmp_path):
    b = make_bundle(tmp_path / "b", "fp32")
    run_double(b, "10")
    proc, entry, calls = run_double(b, "11")  # the same bundle after a TensorRT upgrade
    measured(proc, entry, "11")
    assert events(calls, "set_timing_cache") == [{"event": "set_timing_cache", "ok": True, "cache_release": VERSIONS["11"],
                                                  "ignore_mismatch": False}]
    assert {p.name for p in b.glob("timing*")} == {"timing.trt10.8.0.43.cache", "timing.trt11.0.0.114.cache"}


def test_api_conformance_manifest_naming_an_engine_still_parses_the_onnx(tmp_path):
    """Bundles built on a host with TensorRT and a GPU recorded model.engine as the file."""
    b = make_bundle(tmp_path / "b", file="models/pick/model.engine")
    (b / "models" / "pick" / "model.engine").write_bytes(b"an engine built elsewhere")
    proc, entry, calls = run_double(b, "10")
    measured(proc, entry, "10")
    assert events(calls, "parse")[0]["ok"] is True


def built_engine(folder: Path, release: str, monkeypatch, precision: str = "fp16") -> Path:
    """model.engine (+ its version sidecar) from tensorrt_engine.build_engine on the release's double."""
    from metaforge.export.tensorrt_engine import build_engine

    trt_api.activate(release, CUDA_OF[release], sys.modules if monkeypatch is None else _patched(monkeypatch))
    onnx = folder / "models" / "pick" / "model.onnx"
    engine = onnx.with_name("model.engine")
    target = SimpleNamespace(precision=precision, workspace_mb=64)
    build_engine(onnx, engine, target, cache_path=onnx.with_name("timing.cache"))
    return engine


def _patched(monkeypatch) -> dict:
    class Modules(dict):
        def __setitem__(self, k, v):
            monkeypatch.setitem(sys.modules, k, v)

    return Modules()


def test_api_conformance_bundle_records_the_onnx_and_its_engine_beside_it(tmp_path, monkeypatch):
    b = make_bundle(tmp_path / "b")
    engine = built_engine(b, "10", monkeypatch)
    entry = model_files(engine, b)
    assert entry["file"] == "models/pick/model.onnx" and len(entry["sha256"]) == 64
    assert entry["engine"]["file"] == "models/pick/model.engine" and entry["engine"]["tensorrt_version"] == VERSIONS["10"]
    assert model_files(b / "models" / "pick" / "model.onnx", b).keys() == {"file", "sha256"}


def test_api_conformance_shipped_engine_is_used_only_at_its_exact_version(tmp_path, monkeypatch):
    b = make_bundle(tmp_path / "b")
    entry = model_files(built_engine(b, "10", monkeypatch), b)
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["models"][0].update(entry)
    (b / "manifest.json").write_text(json.dumps(manifest))
    proc, res, calls = run_double(b, "10")
    measured(proc, res, "10")
    assert not events(calls, "parse") and events(calls, "deserialize") == [{"event": "deserialize", "ok": True}]
    assert res["engine"]["file"] == "models/pick/model.engine" and "engine shipped in the bundle" in res["notes"][0]
    proc, res, calls = run_double(b, "11")
    measured(proc, res, "11")
    assert events(calls, "parse")[0]["ok"] and "shipped engine not used" in res["notes"][0]


def test_api_conformance_bundle_built_where_tensorrt_is_ships_the_onnx_and_the_engine(tiny_run, tmp_path, monkeypatch):
    """The bundle of a host with TensorRT (the 10.x double) and a GPU: it named model.engine as the model, which
    run.py handed to OnnxParser.parse. Now the ONNX is the model and the engine rides beside it."""
    import metaforge.export.tensorrt as trt_export
    import metaforge.export.tensorrt_engine as trt_engine
    from metaforge.bundle.build import BundleOptions, build_bundle
    from metaforge.export.runtime import onnx_runner

    trt_api.activate("10", "cuda-python", _patched(monkeypatch))
    monkeypatch.setattr(trt_export, "engine_unavailable", lambda: "")  # "a CUDA GPU is here"
    # the double's engine outputs zeros: the host's gates run on the prepared ONNX in onnxruntime instead
    monkeypatch.setattr(trt_engine, "engine_runner",
                        lambda path, batch: onnx_runner(SimpleNamespace(path=path.with_name("model.onnx"), batch=batch)))
    b = build_bundle(tiny_run[0], "jetson-nano", tmp_path / "bundle", options=BundleOptions(runs=200, max_evals=8, time_cap_s=30.0))
    (entry,) = json.loads((b / "manifest.json").read_text())["models"]
    assert entry["file"] == "models/pick/model.onnx" and (b / entry["file"]).read_bytes().startswith(b"\x08")
    assert entry["engine"]["file"] == "models/pick/model.engine" and entry["engine"]["tensorrt_version"] == VERSIONS["10"]
    assert (b / "trt_device.py").read_text() == TRT_DEVICE.read_text()
    proc, res, calls = run_double(b, "10")  # the host's own TensorRT version: the shipped engine
    measured(proc, res, "10", samples=359)
    assert not events(calls, "parse") and res["engine"]["file"] == "models/pick/model.engine"
    proc, res, calls = run_double(b, "8.2")  # the Nano: built there from the ONNX
    measured(proc, res, "8.2", samples=359)
    assert events(calls, "parse")[0]["ok"] and "shipped engine not used" in res["notes"][0]


@pytest.mark.parametrize("release", ["8.2", "10", "11"])
def test_api_conformance_host_builder_and_runner(tmp_path, monkeypatch, release):
    """metaforge.export.tensorrt_engine end to end in this process: build, version sidecar, cache, run."""
    from metaforge.export.tensorrt_engine import engine_runner, engine_version

    b = make_bundle(tmp_path / "b", "int8")
    engine = built_engine(b, release, monkeypatch, "int8")
    assert engine_version(engine) == VERSIONS[release]
    assert (engine.parent / f"timing.trt{VERSIONS[release]}.cache").is_file()
    out = engine_runner(engine, 1)(np.ones((3, 1, 8, 8), np.float32))
    assert out.shape == (3, 10) and not out.any()  # the double's zeros


def test_api_conformance_host_builder_refuses_int8_without_qdq(tmp_path, monkeypatch):
    from metaforge.export import ExportError

    b = make_bundle(tmp_path / "b", "int8", qdq=False)
    with pytest.raises(ExportError, match="int8 needs a QDQ ONNX"):
        built_engine(b, "10", monkeypatch, "int8")


def test_device_modules_and_doubles_are_python36():
    import ast

    files = [RUNNER, TRT_DEVICE, *sorted((Path(__file__).parent / "trt_api").glob("*.py"))]
    for f in files:
        ast.parse(f.read_text(), feature_version=(3, 6))
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).is_file():
        pytest.skip("vermin is not installed")
    r = subprocess.run([vermin, "-t=3.6-", "--no-tips", "--violations", *map(str, files)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("target,release", [("tensorrt10-int8", "10"), ("tensorrt11-fp16", "11")])  # 11 int8: the hand-made bundles above
def test_api_conformance_bundles_for_tensorrt_10_and_11_run_on_their_release(tiny_run, tmp_path, target, release):
    """A CPU host's bundle for a TensorRT 10 or 11 device (a profile naming that target): the QDQ or
    fp16 ONNX ships as the model, and run.py drives that release's double end to end."""
    import yaml

    from metaforge.bundle.build import BundleOptions, build_bundle

    prof = yaml.safe_load(Path("metaforge/shipped/profiles/jetson-nano.yaml").read_text())
    prof.update(name="orin-test", description="a TensorRT 10/11 device", target=target)
    (tmp_path / "orin.yaml").write_text(yaml.safe_dump(prof))
    b = build_bundle(tiny_run[0], tmp_path / "orin.yaml", tmp_path / "bundle",
                     options=BundleOptions(runs=200, max_evals=8, time_cap_s=30.0))
    (entry,) = json.loads((b / "manifest.json").read_text())["models"]
    onnx = b / entry["file"]
    assert entry["file"].endswith("model.onnx") and "engine" not in entry
    graph = __import__("onnx").load(str(onnx)).graph
    assert ("QuantizeLinear" in {n.op_type for n in graph.node}) == target.endswith("int8")
    if target.endswith("fp16"):  # TensorRT 11 takes the precision from the tensors: the weights must be float16
        assert {t.data_type for t in graph.initializer if t.dims and len(t.dims) == 4} == {10}
    proc, res, calls = run_double(b, release)
    measured(proc, res, release, samples=359)
    assert events(calls, "parse")[0]["ok"]
    flags = [c["flag"] for c in events(calls, "set_flag")]
    assert flags == (["INT8"] if release == "10" else [])  # 11 is strongly typed: the precision is the ONNX's
