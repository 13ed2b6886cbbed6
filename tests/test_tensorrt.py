"""TensorRT per version, without TensorRT: op tables, the one-line version error, exact trtexec lines."""

from __future__ import annotations

import dataclasses

import pytest

from metaforge.export import ExportError
from metaforge.targets import load_target


def _onnx_with(op_type: str, path, opset: int = 13, inputs: int = 1):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    kind = TensorProto.BOOL if op_type == "Xor" else TensorProto.FLOAT
    xs = [helper.make_tensor_value_info(f"in{i}", kind, [1, 4]) for i in range(inputs)]
    y = helper.make_tensor_value_info("out", kind, [1, 4])
    node = helper.make_node(op_type, [x.name for x in xs], ["out"])
    model = helper.make_model(helper.make_graph([node], "g", xs, [y]), opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def _ops_status(path, version: str) -> str:
    from metaforge.export.tensorrt import op_support_checks

    return {c.name: c.status for c in op_support_checks(path, version)}["tensorrt.ops"]


def test_tensorrt_82_table_has_no_xor_and_has_reciprocal(tmp_path):
    """8.2 has no Xor importer (added in 8.4) and has had Reciprocal all along."""
    from metaforge.export.tensorrt import op_table

    table = op_table("8.2.1")
    assert "Xor" in table["unsupported"] and "Xor" not in table["supported"]
    assert "Reciprocal" in table["supported"] and "Reciprocal" not in table["unsupported"]
    assert _ops_status(_onnx_with("Xor", tmp_path / "xor.onnx", inputs=2), "8.2") == "fail"
    assert _ops_status(_onnx_with("Reciprocal", tmp_path / "recip.onnx"), "8.2") == "pass"
    assert _ops_status(_onnx_with("Xor", tmp_path / "xor10.onnx", opset=17, inputs=2), "10.3") == "pass"


@pytest.mark.parametrize("version,opsets", [("8.2", (7, 13)), ("10", (9, 20)), ("10.3.0", (9, 20)), ("11", (9, 24)), ("11.1", (9, 24))])
def test_every_supported_version_has_a_sourced_table(version, opsets):
    from metaforge.export.tensorrt import op_table

    table = op_table(version)
    assert tuple(table["opset"]) == opsets and "operators.md" in table["source"]
    assert {"Conv", "Relu", "Add", "Gemm", "GlobalAveragePool", "Flatten", "QuantizeLinear", "DequantizeLinear", "Cast"} <= set(table["supported"])
    assert not set(table["supported"]) & set(table["unsupported"])


@pytest.mark.parametrize("version", ["9.1", "12", "7.1.3", "8.6", ""])
def test_unknown_tensorrt_version_is_one_line_naming_the_supported_ones(version):
    from metaforge.export.tensorrt import op_table, trtexec_command

    with pytest.raises(ExportError) as e:
        op_table(version)
    message = str(e.value)
    assert "\n" not in message and "supported versions are 8.2, 10.x, 11.x" in message and "tensorrt_version" in message
    target = dataclasses.replace(load_target("tensorrt-fp16"), tensorrt_version=version or "x")
    with pytest.raises(ExportError, match="supported versions are"):
        trtexec_command(target, "model.onnx", (1, 1, 8, 8))


def _base(version: str) -> str:
    return f"trtexec --onnx=model.onnx --saveEngine=model.engine --timingCacheFile=timing.trt{version}.cache"


COMMANDS = {
    ("tensorrt-fp32", None): f"{_base('8.2')} --workspace=256",
    ("tensorrt-fp16", None): f"{_base('8.2')} --workspace=256 --fp16",
    ("tensorrt-int8", None): f"{_base('8.2')} --workspace=256 --int8",
    ("tensorrt10-fp16", None): f"{_base('10')} --memPoolSize=workspace:256 --fp16",
    ("tensorrt10-int8", None): f"{_base('10')} --memPoolSize=workspace:256 --int8",
    ("tensorrt10-fp16", "fp32"): f"{_base('10')} --memPoolSize=workspace:256",
    ("tensorrt11-fp16", None): f"{_base('11')} --memPoolSize=workspace:256",
    ("tensorrt11-int8", None): f"{_base('11')} --memPoolSize=workspace:256",
}


@pytest.mark.parametrize("name,precision", list(COMMANDS))
def test_trtexec_command_per_version(name, precision):
    """Exact lines: a timing cache per TensorRT version; 8.2 --workspace (MiB); 10/11 --memPoolSize with a bare MiB count (10.0 misreads an
    M suffix as ~TiB); --fp16/--int8 only before 11 (strongly typed); never a calibration run."""
    from metaforge.export.tensorrt import trtexec_command

    target = load_target(name)
    if precision:
        target = dataclasses.replace(target, precision=precision)
    command = trtexec_command(target, "model.onnx", (1, 1, 8, 8))
    assert command == COMMANDS[(name, precision)]
    assert "--calib" not in command and "256M" not in command


def test_dynamic_shapes_flag_and_workspace_size_follow_the_target():
    from metaforge.export.tensorrt import trtexec_command

    target = dataclasses.replace(load_target("tensorrt11-int8"), workspace_mb=1024)
    assert trtexec_command(target, "m.onnx", (4, 1, 8, 8), dynamic=True) == (
        "trtexec --onnx=m.onnx --saveEngine=model.engine --timingCacheFile=timing.trt11.cache --shapes=input:4x1x8x8 "
        "--memPoolSize=workspace:1024")


def test_shipped_tensorrt_targets_cover_8_10_and_11():
    from metaforge.targets import list_targets, resolve_target

    versions = {load_target(n).tensorrt_version for n in list_targets() if load_target(n).format == "tensorrt"}
    assert versions == {"8.2", "10", "11"}
    picked = resolve_target(None, "tensorrt", "int8")
    assert (picked.name, picked.tensorrt_version, picked.precision) == ("tensorrt-int8", "8.2", "int8")
    assert "int8" in picked.fast_precisions
    assert resolve_target(None, "onnx", "int8").name == "onnx-int8"
    # a profile's target changes precision on its own TensorRT version, keeping what the device runs fast
    assert resolve_target(load_target("tensorrt10-fp16"), None, "int8").name == "tensorrt10-int8"
    nano = resolve_target(load_target("tensorrt-fp16"), None, "int8")
    assert (nano.name, nano.tensorrt_version, nano.fast_precisions) == ("tensorrt-int8", "8.2", ("fp32", "fp16"))


def test_tensorrt_11_table_has_swish_and_10_does_not(tmp_path):
    """TensorRT 11.0's parser added Swish (NVIDIA/TensorRT v11.0 release notes, commit 771d8efd); no 10.x
    operators.md lists it. DFT (added in 11.2) stays unsupported for "11", which must hold for 11.0 too."""
    from metaforge.export.tensorrt import op_table

    assert "Swish" in op_table("11")["supported"] and "Swish" not in op_table("10")["supported"]
    assert "DFT" in op_table("11.0")["unsupported"] and tuple(op_table("11.4")["opset"]) == (9, 24)
    assert _ops_status(_onnx_with("Swish", tmp_path / "swish.onnx", opset=24), "11.0") == "pass"
    assert _ops_status(_onnx_with("Swish", tmp_path / "swish10.onnx", opset=24), "10.15") == "fail"
