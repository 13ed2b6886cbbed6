"""Resume after ``kill -9``: real `metaforge train` subprocesses killed at several points, resumed.

Every random stream of training is a function of (seed, epoch) or (seed, step) and the state
holds model, INR, optimiser, EMA and position, so a resumed run is expected to be *bitwise* the
uninterrupted one; the issue's bar (final accuracy within 0.5 pt) is asserted as well.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from metaforge.checkpoint import load_manifold
from metaforge.errors import CheckpointError
from metaforge.train.state import STATE_FILE, load_state

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--preset", "tiny", "--device", "cpu", "--base-epochs", "4", "--epochs", "6", "--save-every", "5"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "PYTHONPATH": f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "metaforge", "train", *args], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _state(run: Path) -> dict | None:
    try:
        return load_state(run)
    except CheckpointError:
        return None


# When to kill: a look at the run folder that says "now" (polled every few milliseconds).
KILL_AT = {
    "base": lambda run: (s := _state(run)) is not None and s.get("phase") == "base" and s["epoch"] * 100 + s["step"] >= 105,
    "between phases": lambda run: (run / "base.safetensors").exists(),
    "manifold": lambda run: (s := _state(run)) is not None and s.get("phase") == "manifold" and s["epoch"] >= 2,
}


def _wait(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def test_training_killed_at_any_point_resumes_to_the_uninterrupted_result(tmp_path):
    ref_out = tmp_path / "ref" / "m.safetensors"
    reference = _start(*ARGS, "--out", str(ref_out))
    victims = {name: _start(*ARGS, "--out", str(tmp_path / name.replace(" ", "_") / "m.safetensors")) for name in KILL_AT}
    killed_in: dict[str, str] = {}
    deadline = time.monotonic() + 600
    while len(killed_in) < len(victims) and time.monotonic() < deadline:
        for name, proc in victims.items():
            run = tmp_path / name.replace(" ", "_") / "m.run"
            if name not in killed_in and KILL_AT[name](run):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                state = _state(run)
                killed_in[name] = state.get("phase") if state else "none"
            assert name in killed_in or proc.poll() is None, f"the run to kill in {name!r} ended first: {proc.stderr.read()[-2000:]}"
        time.sleep(0.005)
    assert killed_in.keys() == victims.keys()
    assert killed_in["base"] == "base" and killed_in["manifold"] == "manifold", killed_in
    for name in victims:
        folder = tmp_path / name.replace(" ", "_")
        assert not (folder / "m.safetensors").exists()  # nothing half-done is published
        (folder / "m.run" / f".{STATE_FILE}.torn.tmp").write_bytes(b"\x80\x02half a state")  # what a kill mid-write leaves
    resumed = [_start("--resume", str(tmp_path / name.replace(" ", "_") / "m.run")) for name in victims]
    _wait(reference)
    for proc in resumed:
        _wait(proc)

    ref = load_manifold(ref_out)
    ref_tensors = load_file(ref_out)
    for name in victims:
        out = tmp_path / name.replace(" ", "_") / "m.safetensors"
        got = load_manifold(out)
        for a, b in zip(got.info.accuracy, ref.info.accuracy):
            assert a["config"] == b["config"] and abs(a["top1"] - b["top1"]) <= 0.005, (name, a, b)
        tensors = load_file(out)
        assert tensors.keys() == ref_tensors.keys()
        assert all(torch.equal(tensors[k], ref_tensors[k]) for k in tensors), f"killed in {name}: not bitwise equal"
        assert not list((out.parent / "m.run").glob(".*.tmp"))  # the torn write was cleaned up
    assert ref.info.accuracy[5]["top1"] > 0.8  # a real training run, not a degenerate one

