"""The command line, run as a user runs it: real subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import torch


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metaforge", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_teaches_the_flow():
    r = run("--help")
    assert r.returncode == 0
    for command in ("train", "info", "materialize"):
        assert command in r.stdout
    r = run("train", "--help")
    assert "--resume" in r.stdout and "--bn-mode" in r.stdout


def test_train_writes_a_manifold_and_prints_the_table(tmp_path):
    out = tmp_path / "m.safetensors"
    r = run("train", "--preset", "tiny", "--base-epochs", "1", "--epochs", "1", "--limit", "200", "--out", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert out.exists()
    assert "accuracy vs size" in r.stdout and "unseen" in r.stdout


def test_info_shows_space_and_table(tiny_run):
    path, manifold, _ = tiny_run
    r = run("info", str(path))
    assert r.returncode == 0, r.stderr
    assert "w=2..8,4..16,8..32 d=1..2,1..2,1..2" in r.stdout
    assert manifold.info.accuracy[0]["config"] in r.stdout
    r = run("info", str(path), "--json")
    assert json.loads(r.stdout)["format"] == "metaforge-manifold"


def test_materialize_writes_a_model_plain_torch_loads(tiny_run, tmp_path):
    path, manifold, _ = tiny_run
    out = tmp_path / "model"
    r = run("materialize", str(path), "--config", "w=5,10,20 d=1,2,1", "--out", str(out), "--evaluate")
    assert r.returncode == 0, r.stderr
    assert "unseen" in r.stdout and "test top-1" in r.stdout
    program = torch.export.load(str(out / "model.pt2")).module()
    x = torch.randn(3, 1, 8, 8)
    reference = manifold.materialize("w=5,10,20 d=1,2,1")
    torch.testing.assert_close(program(x), reference(x), atol=1e-5, rtol=1e-5)
    assert json.loads((out / "model.json").read_text())["config"] == "w=5,10,20 d=1,2,1"


def test_config_outside_the_space_is_one_line_with_ranges(tiny_run, tmp_path):
    path, _, _ = tiny_run
    r = run("materialize", str(path), "--config", "w=8,16,64 d=2,2,2", "--out", str(tmp_path / "x"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "valid ranges: w=2..8,4..16,8..32 d=1..2,1..2,1..2" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_corrupt_manifold_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk" * 100)
    r = run("info", str(bad))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_missing_dataset_says_how_to_get_it(tmp_path):
    r = run("train", "--dataset", "cifar10", "--out", str(tmp_path / "m.safetensors"))
    assert r.returncode == 2
    assert "--data-dir" in r.stderr and "Traceback" not in r.stderr
