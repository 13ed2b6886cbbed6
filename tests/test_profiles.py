"""Device profiles: the shipped ones load, and the strict loader rejects bad files in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from metaforge.errors import MetaforgeError
from metaforge.profiles import list_profiles, load_profile

GOOD = """\
name: test-device
description: a device for tests
target: onnx-fp32
batch: 1
budget:
  latency_ms: 2.5
  latency_stat: p90
  memory_mb: 1e2
device:
  peak_gflops: {fp32: 10, int8: 20}
  memory_bandwidth_gbs: 5
  memory_mb: 512
"""


def write(tmp_path, text, name="dev.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profiles_load():
    names = list_profiles()
    assert {"host-cpu", "jetson-nano", "raspberry-pi-4", "raspberry-pi-5"} <= set(names)
    expect = {"host-cpu": ("onnx", "fp32"), "jetson-nano": ("tensorrt", "fp16"),
              "raspberry-pi-4": ("tflite", "int8"), "raspberry-pi-5": ("tflite", "int8")}
    for name, (fmt, precision) in expect.items():
        p = load_profile(name)
        assert (p.name, p.format, p.precision) == (name, fmt, precision)
        assert p.notes, f"{name} must say where its numbers come from"
        assert p.device.peak_gflops[precision] > 0
    assert load_profile("host-cpu").device.local and not load_profile("jetson-nano").device.local


def test_good_file_converts_types(tmp_path):
    p = load_profile(write(tmp_path, GOOD))
    assert p.budget.memory_mb == 100.0 and isinstance(p.budget.memory_mb, float)  # '1e2' is a number
    assert p.budget.latency_stat == "p90" and p.budget.accuracy_floor == 0.0
    assert p.device.peak_gflops == {"fp32": 10.0, "int8": 20.0}
    assert p.path.endswith("dev.yaml")


BAD = [
    # (what, edit of GOOD, words the one-line message must contain)
    ("unknown key", GOOD + "colour: blue\n", ["'colour'", "valid keys"]),
    ("unknown nested key", GOOD.replace("  memory_mb: 512\n", "  memory_mb: 512\n  turbo: true\n"), ["'device.turbo'", "valid keys"]),
    ("wrong type", GOOD.replace("batch: 1", "batch: one"), ["'batch'", "integer"]),
    ("wrong nested type", GOOD.replace("latency_ms: 2.5", "latency_ms: fast"), ["'budget.latency_ms'", "number"]),
    ("bad literal", GOOD.replace("latency_stat: p90", "latency_stat: p99"), ["'budget.latency_stat'", "p50, p90"]),
    ("missing field", GOOD.replace("target: onnx-fp32\n", ""), ["missing required key 'target'"]),
    ("missing nested field", GOOD.replace("  memory_bandwidth_gbs: 5\n", ""), ["'device.memory_bandwidth_gbs'"]),
    ("broken yaml", GOOD.replace("budget:\n", "budget: [\n"), ["not valid YAML", "line"]),
    ("not a mapping", "- just\n- a list\n", ["mapping"]),
    ("unknown target", GOOD.replace("target: onnx-fp32", "target: onnx-fp64"), ["'target'", "onnx-fp64", "onnx-fp32"]),
    ("negative budget", GOOD.replace("latency_ms: 2.5", "latency_ms: -1"), ["budget.latency_ms", "positive"]),
    ("unknown precision", GOOD.replace("{fp32: 10, int8: 20}", "{fp32: 10, fp8: 20}"), ["fp8", "precision"]),
    ("loader-only key", GOOD + "format: onnx\n", ["set by the loader"]),
    ("batch against target", GOOD.replace("target: onnx-fp32", "target: tflite-int8").replace("batch: 1", "batch: 4"), ["'batch'", "batch 1"]),
]


@pytest.mark.parametrize("what,text,words", BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_one_line_error(tmp_path, what, text, words):
    path = write(tmp_path, text)
    with pytest.raises(MetaforgeError) as info:
        load_profile(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, (what, msg)
    assert info.value.exit_code == 2


def test_unknown_name_lists_profiles():
    with pytest.raises(MetaforgeError, match="host-cpu, jetson-nano"):
        load_profile("no-such-device")


def test_cli_list_show_and_error():
    from metaforge.cli import _register, app

    _register()
    runner = CliRunner()
    out = runner.invoke(app, ["profile", "list"])
    assert out.exit_code == 0 and "jetson-nano" in out.output and "tensorrt-fp16" in out.output
    out = runner.invoke(app, ["profile", "show", "raspberry-pi-5"])
    assert out.exit_code == 0 and "precision: int8" in out.output and "Cortex-A76" in out.output
    out = runner.invoke(app, ["profile", "show", "nope"])
    assert out.exit_code != 0


def test_a_wheel_install_carries_the_shipped_profiles_and_targets(tmp_path):
    """Not only an editable checkout: the built wheel holds every shipped YAML and finds it."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(root), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("metaforge-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import metaforge.profiles as p, metaforge.targets as t; "
            "print(sorted(p.list_profiles()), p.load_profile('jetson-nano').target, t.load_target('tflite-int8').precision, p.__file__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("]")[0] == "['host-cpu', 'jetson-nano', 'raspberry-pi-4', 'raspberry-pi-5'"
    assert "tensorrt-fp16 int8" in r.stdout and r.stdout.split()[-1].startswith(str(site))  # the wheel's copy, not the checkout
