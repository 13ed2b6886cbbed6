"""Export and check: real onnxruntime and ai-edge-litert sessions against PyTorch as the oracle."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch

from metaforge.data import load_dataset
from metaforge.export import ExportData, ExportError, ModelSpec
from metaforge.nets import ResNet
from metaforge.space import ArchConfig
from metaforge.targets import Tolerances, load_target

CONFIG = "w=4,8,16 d=1,1,1"
REPORT_KEYS = {"schema", "format", "precision", "artifact", "config", "n_samples", "parity", "accuracy", "passed", "checks"}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None, seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    """A small ResNet trained for a few seconds on digits (int8 accuracy needs a real classifier)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only contend on a shared 2-core runner
    net = ResNet(ArchConfig.parse(CONFIG), 1, 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = digits.norm.apply(digits.train.images), digits.train.labels
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    torch.set_num_threads(threads)
    return net.eval()


@pytest.fixture(scope="module")
def spec(digits):
    return ModelSpec((1, 8, 8), digits.norm, digits.classes, CONFIG, {"dataset": "digits"})


@pytest.fixture(scope="module")
def data(digits):
    return ExportData(heldout=digits.test, calibration=digits.train, norm=digits.norm)


def export(net, spec, data, target, out):
    from metaforge.export.pipeline import export_model

    return export_model(net, spec, target, out, data)


def test_onnx_fp32_parity_metadata_and_report(trained, spec, data, tmp_path):
    onnx = pytest.importorskip("onnx")
    result = export(trained, spec, data, load_target("onnx-fp32"), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert REPORT_KEYS <= set(report) and report == json.loads(json.dumps(result.report.to_dict()))
    assert not list(tmp_path.glob(".*")), "the staging folder was left behind"
    assert set(report["parity"]) >= {"max_abs_diff", "sqnr_db", "top1_agreement"}
    assert set(report["accuracy"]) >= {"artifact", "reference", "ci95"}
    assert report["passed"] and report["parity"]["max_abs_diff"] <= 1e-4
    assert report["n_samples"] == len(data.heldout)  # the digits test split has fewer than 1000
    assert all(c["status"] in ("pass", "fail", "not-run") for c in report["checks"])
    lo, hi = report["accuracy"]["ci95"]["artifact"]
    assert lo <= report["accuracy"]["artifact"] <= hi
    meta = {p.key: p.value for p in onnx.load(str(result.artifact)).metadata_props}
    assert meta["config"] == CONFIG and json.loads(meta["classes"]) == list(spec.classes)
    assert json.loads(meta["normalization"]) == spec.normalization.to_dict() and "metaforge_version" in meta
    assert report["artifact"]["inputs"][0]["shape"][0] == "batch"  # dynamic batch


def test_onnx_reexport_is_byte_identical(trained, spec):
    pytest.importorskip("onnx")
    from metaforge.export.onnx import onnx_bytes

    assert onnx_bytes(trained, spec, 17, None) == onnx_bytes(trained, spec, 17, None)
    assert onnx_bytes(trained, spec, 13, 1) != onnx_bytes(trained, spec, 17, None)


def test_tflite_fp32_parity_and_byte_identical(trained, spec, data, tmp_path):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    result = export(trained, spec, data, load_target("tflite-fp32"), tmp_path / "a")
    assert result.passed and result.report.parity.max_abs_diff <= 1e-4
    assert result.report.artifact.layout == "NHWC" and result.report.artifact.inputs[0]["shape"] == [1, 8, 8, 1]
    from metaforge.export.tflite import export_tflite, read_metadata

    meta = read_metadata(result.artifact)
    assert meta["config"] == CONFIG and meta["input_layout"] == "NHWC" and json.loads(meta["classes"]) == list(spec.classes)
    again = export_tflite(trained, spec, tmp_path / "b" / "model.tflite", "fp32", 1)
    assert (tmp_path / "b" / "model.tflite").read_bytes() == result.artifact.read_bytes(), again.path


def test_tflite_int8_full_integer_accuracy_ratio(trained, spec, data, tmp_path):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    target = load_target("tflite-int8")
    report = export(trained, spec, data, target, tmp_path).report.to_dict()
    acc = report["accuracy"]
    assert acc["reference"] > 0.8, "the fixture network should be a real classifier"
    assert acc["artifact"] >= target.tolerances.int8_accuracy_ratio * acc["reference"]
    assert report["passed"], report["checks"]
    for io in report["artifact"]["inputs"] + report["artifact"]["outputs"]:
        assert io["dtype"] == "int8" and io["quantization"]["scale"] > 0
    assert {c["name"]: c["status"] for c in report["checks"]}["tflite.full_integer"] == "pass"
    assert report["calibration"]["samples"] == target.calibration_samples and report["calibration"]["split"] == "train"


def test_impossible_tolerance_fails_the_gate(trained, spec, data, tmp_path):
    tight = dataclasses.replace(load_target("onnx-fp32"), tolerances=Tolerances(max_abs_diff=0.0, sqnr_db=1000.0))
    report = export(trained, spec, data, tight, tmp_path).report.to_dict()
    assert not report["passed"]
    assert {c["name"] for c in report["checks"] if c["status"] == "fail"} >= {"parity.sqnr_db"}


def _onnx_with(op_type: str, path, opset: int = 13):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["input"], ["h"]), helper.make_node(op_type, ["h"], ["logits"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def test_tensorrt_op_support_check_on_cpu(tmp_path):
    from metaforge.export.tensorrt import op_support_checks

    ok = {c.name: c for c in op_support_checks(_onnx_with("Sigmoid", tmp_path / "ok.onnx"), "8.2")}
    assert ok["tensorrt.opset"].status == "pass" and ok["tensorrt.ops"].status == "pass"
    bad = {c.name: c for c in op_support_checks(_onnx_with("Unique", tmp_path / "bad.onnx"), "8.2")}
    assert bad["tensorrt.ops"].status == "fail" and "Unique" in bad["tensorrt.ops"].detail
    new = {c.name: c for c in op_support_checks(_onnx_with("Relu", tmp_path / "new.onnx", opset=17), "8.2")}
    assert new["tensorrt.opset"].status == "fail"  # TensorRT 8.2 reads opsets up to 13


def test_tensorrt_prepare_without_engine_reports_not_run(trained, spec, data, tmp_path):
    pytest.importorskip("onnx")
    report = export(trained, spec, data, load_target("tensorrt-fp16"), tmp_path).report.to_dict()
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["tensorrt.ops"] == "pass" and status["tensorrt.opset"] == "pass"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert status["tensorrt.engine"] == "not-run" and not report["complete"]
    command = (tmp_path / "build_engine.sh").read_text()
    assert "trtexec" in command and "--fp16" in command and "model.onnx" in command


def _qdq_zero_points(path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    return qdq, [inits[n.input[2]] for n in qdq], numpy_helper


def test_onnx_int8_is_qdq_with_zero_points_0_and_measured_in_onnxruntime(trained, spec, data, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    target = load_target("onnx-int8")
    report = export(trained, spec, data, target, tmp_path).report.to_dict()
    qdq, zero_points, numpy_helper = _qdq_zero_points(tmp_path / "model.onnx")
    assert len(qdq) >= 10 and {n.op_type for n in qdq} == {"QuantizeLinear", "DequantizeLinear"}
    assert all(z.data_type == 3 and not numpy_helper.to_array(z).any() for z in zero_points)  # int8, all 0
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": data.norm.apply(data.heldout.images[:2]).numpy()})[0].shape == (2, 10)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["onnx.qdq"] == "pass" and status["accuracy.ratio"] == "pass" and status["parity.top1_agreement"] == "pass"
    acc = report["accuracy"]
    assert acc["reference"] > 0.8 and acc["artifact"] >= 0.99 * acc["reference"]
    assert report["parity"]["top1_agreement"] >= 0.97 and report["n_samples"] == len(data.heldout)
    assert report["calibration"] == {"samples": target.calibration_samples, "split": "train", "seed": 0}
    assert report["passed"] and report["precision"] == "int8" and report["artifact"]["inputs"][0]["dtype"] == "float32"


def test_qdq_check_rejects_float_weights_and_nonzero_zero_points(trained, spec, data, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from metaforge.export.onnx import export_onnx, export_precision_onnx
    from metaforge.export.qdq import qdq_check

    export_onnx(trained, spec, tmp_path / "fp32.onnx", 17, None)
    assert qdq_check(tmp_path / "fp32.onnx").status == "fail"  # no Q/DQ, weights in float
    calib = data.norm.apply(data.calibration.images[:70])
    _, checks, notes = export_precision_onnx(trained, spec, tmp_path / "q.onnx", 17, None, "int8", calib)
    assert [c.status for c in checks] == ["pass", "pass"] and "on 70 training samples" in notes[0]  # a partial last batch counts
    proto = onnx.load(str(tmp_path / "q.onnx"))
    zp = next(t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("zero_point"))
    zp.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(zp) + 3, zp.name))
    onnx.save(proto, str(tmp_path / "asym.onnx"))
    bad = qdq_check(tmp_path / "asym.onnx")
    assert bad.status == "fail" and "zero point not int8 0" in bad.detail


def test_tensorrt_int8_is_the_qdq_onnx_gated_here_and_its_script_never_calibrates(trained, spec, data, tmp_path):
    pytest.importorskip("onnxruntime")
    report = export(trained, spec, data, load_target("tensorrt-int8"), tmp_path).report.to_dict()
    script = (tmp_path / "build_engine.sh").read_text()
    assert "--int8" in script and "--calib" not in script and not (tmp_path / "calibration.npy").exists()
    qdq, zero_points, numpy_helper = _qdq_zero_points(tmp_path / "model.onnx")
    assert qdq and all(not numpy_helper.to_array(z).any() for z in zero_points)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["tensorrt.ops"] == "pass" and status["tensorrt.opset"] == "pass" and status["onnx.qdq"] == "pass"
    assert status["accuracy.ratio"] == "pass" and report["passed"]
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert status["tensorrt.engine"] == "not-run" and not report["complete"]  # never reported as passed


def test_fp16_onnx_is_float16_and_gated_against_pytorch(trained, spec, data, tmp_path):
    onnx = pytest.importorskip("onnx")
    target = load_target("tensorrt-fp16")
    report = export(trained, spec, data, target, tmp_path).report.to_dict()
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert graph.initializer and all(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer if t.data_type in (1, 10))
    assert [i["dtype"] for i in report["artifact"]["inputs"] + report["artifact"]["outputs"]] == ["float32", "float32"]
    assert {c["name"]: c["status"] for c in report["checks"]}["onnx.fp16"] == "pass"
    assert report["parity"]["max_abs_diff"] <= target.tolerances.max_abs_diff == 5e-2  # the stated tolerance
    assert report["parity"]["top1_agreement"] >= 0.99 and report["passed"]
    assert "--fp16" in (tmp_path / "build_engine.sh").read_text()


@pytest.mark.parametrize("name", ["tensorrt10-fp16", "tensorrt11-int8"])
def test_tensorrt_10_and_11_targets_export(trained, spec, data, tmp_path, name):
    """Every TensorRT 10 export failed while only an 8.2 op table existed."""
    pytest.importorskip("onnxruntime")
    report = export(trained, spec, data, load_target(name), tmp_path).report.to_dict()
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["tensorrt.ops"] == "pass" and status["tensorrt.opset"] == "pass" and report["passed"]
    script = (tmp_path / "build_engine.sh").read_text()
    assert "--memPoolSize=workspace:256" in script and "256M" not in script and "--calib" not in script
    if name.startswith("tensorrt11"):
        assert "--int8" not in script and "--fp16" not in script  # strongly typed: precision from the ONNX


def test_int8_on_jetson_nano_needs_allow_fallback(trained, spec, data, tmp_path):
    from metaforge.export.pipeline import export_model
    from metaforge.targets import resolve_target

    target = resolve_target(load_target("tensorrt-fp16"), None, "int8")
    with pytest.raises(ExportError, match="allow-fallback"):
        export_model(trained, spec, target, tmp_path, data)
    report = export_model(trained, spec, target, tmp_path, data, allow_fallback=True).report.to_dict()
    assert report["precision"] == "fp16" and any("fallback" in n for n in report["notes"])


def test_tensorrt_engine_builds_and_matches(trained, spec, data, tmp_path):
    pytest.importorskip("tensorrt")
    report = export(trained, spec, data, load_target("tensorrt-fp32"), tmp_path).report.to_dict()
    status = {c["name"]: c["status"] for c in report["checks"]}
    if status.get("tensorrt.engine") == "not-run":
        pytest.skip("tensorrt is importable but no GPU is present")
    assert status["tensorrt.engine"] == "pass" and report["passed"]


@pytest.fixture(scope="module")
def manifold_file(tmp_path_factory, digits):
    """An untrained manifold file: enough to drive the CLI (accuracy is not the point here)."""
    from metaforge.checkpoint import save_manifold
    from metaforge.inr import INRConfig, WeightINR
    from metaforge.manifold import Manifold, ManifoldInfo
    from metaforge.space import make_space

    torch.manual_seed(0)
    space = make_space("tiny", 1, 10, 8)
    info = ManifoldInfo(dataset="digits", classes=digits.classes, normalization=digits.norm, bn_mode="fold",
                        seen_widths=tuple((w,) for w in space.max_widths), seen_depths=tuple((d,) for d in space.max_depths),
                        train_config={"seed": 0})
    path = tmp_path_factory.mktemp("manifold") / "m.safetensors"
    save_manifold(Manifold(WeightINR(space, INRConfig(), False), info), path)
    return path


def run_cli(args: list[str]) -> int:
    from metaforge.cli import main

    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_cli_export_exit_codes(manifold_file, tmp_path):
    args = ["export", "--manifold", str(manifold_file), "--config", "w=2,4,8 d=1,1,1", "--format", "onnx"]
    assert run_cli([*args, "--out", str(tmp_path / "ok")]) == 0
    tight = tmp_path / "tight.yaml"
    tight.write_text("name: tight\nformat: onnx\nprecision: fp32\ntolerances:\n  max_abs_diff: 0\n  sqnr_db: 1000\n")
    assert run_cli([*args, "--target", str(tight), "--out", str(tmp_path / "tight")]) == 2
    assert json.loads((tmp_path / "tight" / "report.json").read_text())["passed"] is False
    assert run_cli([*args, "--precision", "fp16", "--out", str(tmp_path / "bad")]) in (2, 4)  # no onnx-fp16 target


def test_report_parity_math():
    from metaforge.export.gates import bootstrap_ci, parity

    ref = np.array([[1.0, 2.0], [3.0, 1.0]])
    p = parity(ref, ref + np.array([[0.1, 0.0], [0.0, -0.1]]))
    assert p.max_abs_diff == pytest.approx(0.1) and p.top1_agreement == 1.0
    assert p.sqnr_db == pytest.approx(10 * np.log10(15 / 0.02), abs=1e-3)
    assert bootstrap_ci(np.ones(50)) == [1.0, 1.0]


def test_check_exit_codes_and_junit(tmp_path):
    from xml.etree import ElementTree as ET

    from metaforge.deploy.check import GATES, Gate, ProfileRun, exit_code, write_junit

    def run(name, **status):
        return ProfileRun(name, gates=[Gate(name, g, s, f"{g} detail") for g, s in status.items()])

    ok = run("host-cpu", export="pass", parity="pass", accuracy="pass", latency="pass", memory="pass", engine="not-run")
    assert exit_code([ok]) == 0
    assert exit_code([ok, run("pi", parity="fail", latency="fail")]) == 2
    assert exit_code([ok, run("pi", latency="fail")]) == 3
    assert exit_code([run("pi", export="fail", parity="fail")]) == 4
    suite = ET.parse(write_junit([ok, run("pi", memory="fail")], tmp_path / "out.xml")).getroot()[0]
    assert suite.get("tests") == "7" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    assert {c.get("name") for c in suite if c.get("classname") == "metaforge.host-cpu"} == set(GATES)


class CopyExporter:
    """A whole new format in a dozen lines: the model's ONNX under another name, run by onnxruntime."""

    tools = ("torch",)

    def export(self, model, spec, target, out_dir, calibration):
        from metaforge.export.onnx import export_onnx
        from metaforge.export.registry import Exported

        artifact = export_onnx(model, spec, out_dir / "model.copy", target.opset, None)
        return Exported(artifact, notes=("copied",), runtime="onnxruntime via the copy format")


def test_a_new_format_is_one_exporter_and_one_registration(trained, spec, data, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from metaforge.export import registry
    from metaforge.targets import Target

    with pytest.raises(ValueError, match="'format' is 'copy'; valid values: onnx, tflite, tensorrt"):
        Target("t", "copy", "fp32", Tolerances(max_abs_diff=1e-4))
    monkeypatch.setattr(registry, "_EXPORTERS", dict(registry._EXPORTERS))
    monkeypatch.setattr(registry, "_RUNTIMES", dict(registry._RUNTIMES))
    monkeypatch.setattr(registry, "_RUNTIME_NAMES", dict(registry._RUNTIME_NAMES))
    monkeypatch.setitem(sys.modules, "copy_format", sys.modules[__name__])
    registry.register_exporter("copy", "copy_format:CopyExporter", "onnxruntime")
    registry.register_runtime("copy", "metaforge.export.runtime:onnx_runner")
    result = export(trained, spec, data, Target("t", "copy", "fp32", Tolerances(max_abs_diff=1e-4)), tmp_path)
    assert result.passed and result.artifact == tmp_path / "model.copy" and result.report.notes == ("copied",)
    assert result.report.runtime == "onnxruntime via the copy format" and set(result.report.tools) == {"torch"}


def test_cli_exports_tensorrt_int8_end_to_end_on_a_trained_digits_manifold(tiny_run, tmp_path):
    """`metaforge export --format tensorrt --precision int8` on a CPU host: QDQ ONNX calibrated and gated here."""
    pytest.importorskip("onnxruntime")
    path, _, _ = tiny_run
    out = tmp_path / "trt"
    code = run_cli(["export", "--manifold", str(path), "--config", "w=8,16,32 d=2,2,2", "--format", "tensorrt",
                    "--precision", "int8", "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert code == 0 and report["passed"] and not report["complete"]  # the engine checks did not run here
    assert (report["target"], report["precision"], report["runtime"]) == ("tensorrt-int8", "int8", "onnxruntime (prepared ONNX)")
    assert report["accuracy"]["ratio"] >= 0.99 and report["parity"]["top1_agreement"] >= 0.97
    assert report["n_samples"] == 359 and report["calibration"]["split"] == "train"
    script = (out / "build_engine.sh").read_text()
    assert "--int8" in script and "--calib" not in script and sorted(p.name for p in out.iterdir()) == ["build_engine.sh", "model.onnx", "report.json"]
