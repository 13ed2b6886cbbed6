"""Writing onto a really full filesystem: one `error:` line naming the path and the cause, exit 2, and
nothing half-written left behind (no artifact, no temp file, no half a folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CFG = "w=8,16,32 d=2,2,2"


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KB tmpfs filled to the last byte; skipped where this process may not mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: cannot make a real full filesystem")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


CASES = {
    "train": ("train", "--preset", "tiny", "--epochs", "1", "--base-epochs", "1", "--limit", "100", "--device", "cpu",
              "--out", "{d}/m.safetensors"),
    "export": ("export", "--manifold", "{m}", "--config", CFG, "--format", "onnx", "--out", "{d}/e"),
    "materialize": ("materialize", "{m}", "--config", CFG, "--out", "{d}/model"),
    "fit-json": ("fit", "{m}", "--profile", "raspberry-pi-5", "--max-evals", "4", "--json", "{d}/fit.json"),
    "check": ("check", "--manifold", "{m}", "--profile", "jetson-nano", "--time-cap", "1", "--out", "{d}/c"),
    "bundle": ("bundle", "--manifold", "{m}", "--profile", "jetson-nano", "--max-evals", "4", "--out", "{d}/b"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_full_disk_is_one_line_and_leaves_nothing(name, full_disk, tiny_run):
    before = sorted(p.name for p in full_disk.iterdir())
    args = [a.format(m=tiny_run[0], d=full_disk) for a in CASES[name]]
    r = subprocess.run([sys.executable, "-m", "metaforge", *args], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith(("⠋", " "))]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], r.stderr
    assert f"cannot write {full_disk}/" in errors[0] and "No space left on device" in errors[0], errors[0]
    assert r.returncode == 2, (r.returncode, errors[0])
    assert sorted(p.name for p in full_disk.iterdir()) == before, "something was left on the full disk"


def test_an_export_whose_runtime_fails_leaves_no_folder(tiny_run, tmp_path, monkeypatch):
    """Exit 4 from the runtime: the artifact was written into the staging folder, which goes with it."""
    from metaforge.deploy.job import job_for
    from metaforge.export import ExportError
    from metaforge.export.pipeline import export_model
    from metaforge.space import ArchConfig
    from metaforge.targets import load_target

    def broken(artifact):
        assert Path(artifact.path).is_file()  # the artifact really was written before the runtime ran

        def run(x):
            raise RuntimeError("the runtime crashed")
        return run

    monkeypatch.setattr("metaforge.export.runtime.onnx_runner", broken)
    m = tiny_run[1]
    job = job_for(m, ArchConfig.parse(CFG), load_target("onnx-fp32"), "config")
    with pytest.raises(ExportError, match="onnx runtime failed on .*model.onnx: the runtime crashed") as info:
        export_model(job.model, job.spec, job.target, tmp_path / "e", job.data)
    assert info.value.exit_code == 4
    assert list(tmp_path.iterdir()) == [], "the export left a folder or its staging folder behind"
