"""Nothing metaforge loads can run code, and no output lands outside the folder asked for."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metaforge.checkpoint import load_manifold
from metaforge.data import cifar, raw
from metaforge.errors import CheckpointError, ConfigError, DataError
from metaforge.model_io import load_model
from metaforge.profiles import PROFILES_DIR, load_profile
from metaforge.train.config import TrainConfig
from metaforge.train.state import STATE_FILE, load_state
from metaforge.yamlconf import YamlConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "metaforge"
REPO = PACKAGE.parent


class Exploit:
    """Unpickling this runs ``touch marker``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


# Ways to load that can execute code; each match in metaforge's source must be absent.
UNSAFE = {
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only=True)"),
    "pickle.load(s)": re.compile(r"pickle\.loads?\("),
    "a plain pickle.Unpickler": re.compile(r"pickle\.Unpickler\((?!\))"),
    "yaml.load / unsafe_load": re.compile(r"yaml\.(load|unsafe_load|full_load)\("),
    "np.load with allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "eval/exec of text": re.compile(r"(?<![\w.])(eval|exec)\("),
    "torch.jit.load / marshal / shelve": re.compile(r"torch\.jit\.load|\bmarshal\.|\bshelve\."),
    "a shell": re.compile(r"shell\s*=\s*True|os\.system\("),
}


def test_no_loader_in_metaforge_can_execute_code():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in UNSAFE.items():
                if pattern.search(line):
                    found.append(f"{path.relative_to(REPO)}:{n}: {what}: {line.strip()}")
    assert not found, "\n".join(found)
    # and the checks bite: each pattern catches its own example
    for line in ("torch.load(p)", "pickle.loads(b)", "yaml.load(t)", "np.load(f, allow_pickle=True)", "eval(s)", "os.system(c)"):
        assert any(p.search(line) for p in UNSAFE.values()), line


def _resumable_run(folder: Path) -> Path:
    run = folder / "m.run"
    run.mkdir(parents=True)
    cfg = TrainConfig(preset="tiny", device="cpu", epochs=1, base_epochs=1)
    (run / "config.json").write_text(json.dumps({"out": str(folder / "m.safetensors"), "train": cfg.to_dict()}))
    return run


def test_malicious_pickle_in_a_training_state_does_not_run(tmp_path):
    run = _resumable_run(tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"version": 1, "phase": "base", "epoch": 0, "step": 1, "model": Exploit(marker)}, run / STATE_FILE)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_state(run)
    assert not marker.exists()
    # as a user meets it: `metaforge train --resume` says so in one line and runs nothing
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "metaforge", "train", "--resume", str(run)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0 and "unreadable" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not marker.exists() and not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("write", ["pickle", "torch.save"])
def test_a_pickle_disguised_as_a_manifold_or_model_does_not_run(tmp_path, write):
    marker = tmp_path / "pwned"
    path = tmp_path / "m.safetensors"
    if write == "pickle":
        path.write_bytes(pickle.dumps({"inr": Exploit(marker)}))
    else:
        torch.save({"inr": Exploit(marker)}, path)
    with pytest.raises(CheckpointError):
        load_manifold(path)
    with pytest.raises(CheckpointError):
        load_model(path)
    assert not marker.exists()


def test_numpy_files_with_object_arrays_are_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    assets = tmp_path / "assets"
    assets.mkdir()
    images = np.empty(1, dtype=object)
    images[0] = Exploit(marker)
    np.savez(assets / "digits.npz", images=images, labels=np.zeros(1, dtype=np.int64))  # savez pickles object arrays
    monkeypatch.setattr(raw.importlib.resources, "files", lambda package: tmp_path)
    with pytest.raises(DataError, match="unreadable"):
        raw.read_digits()
    assert not marker.exists()
    # an object array inside a dataset pickle: its elements are pickles too, and refused
    (tmp_path / "batch").write_bytes(pickle.dumps({b"data": images, b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load a pickle that calls"):
        cifar._cifar_batch(tmp_path / "batch", "labels", 10)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "/tmp/abs", ".hidden", "..", "x\\y"])
def test_a_profile_name_that_would_leave_the_output_folder_is_refused(tmp_path, name):
    text = (PROFILES_DIR / "host-cpu.yaml").read_text().replace("name: host-cpu", f"name: {json.dumps(name)}")
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(YamlConfigError, match="'name' must be a plain file name"):
        load_profile(path)


def test_check_with_an_escaping_profile_name_writes_nothing(tmp_path, tiny_run):
    text = (PROFILES_DIR / "host-cpu.yaml").read_text().replace("name: host-cpu", "name: ../escaped")
    (tmp_path / "evil.yaml").write_text(text)
    out = tmp_path / "work" / "out"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "metaforge", "check", "--manifold", str(tiny_run[0]), "--profile",
                        str(tmp_path / "evil.yaml"), "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "plain file name" in r.stderr, r.stderr
    assert not (tmp_path / "work" / "escaped").exists()


def test_resume_refuses_to_write_where_an_edited_run_folder_points(tmp_path):
    from metaforge.train.run import resume_run

    run = _resumable_run(tmp_path)
    victim = tmp_path / "elsewhere" / "important.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**saved, "out": str(victim)}))
    with pytest.raises(ConfigError, match="not beside the run folder: pass --out"):
        resume_run(run)
    assert victim.read_text() == "keep me"


def test_run_folder_stays_beside_the_output():
    from metaforge.train.run import default_run_dir

    assert default_run_dir(Path("a/b/m.safetensors")) == Path("a/b/m.run")
    assert default_run_dir(Path("m")) == Path("m.run")
