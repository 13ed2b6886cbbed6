"""Bad inputs to every command, run as a user runs them: one readable line, a non-zero exit, nothing left.

Each case writes one bad input into a fresh folder (corrupt variants of the one tiny manifold of
the session, broken profiles and targets, bad data folders, unwritable outputs), runs the real
command in a subprocess and asserts: the exit code, exactly one non-empty stderr line that starts
with ``error:`` and names the problem, no Python traceback anywhere, and no file added to the folder
(no output, no temp file beside it).
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

Setup = Callable[[Path, Path], None]  # (case folder, the good manifold) -> writes the bad input


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # "{tmp}" is the case folder, "{m}" the good tiny manifold
    error: str  # regex the one stderr line must match
    code: int = 2
    setup: Setup | None = None
    absent: tuple[str, ...] = ()  # outputs (relative to the case folder) that must not exist afterwards


# ---- bad inputs derived from the good manifold -----------------------------------------------------------

def _copy_edited(name: str, edit: Callable[[bytes], bytes]) -> Setup:
    def setup(tmp: Path, manifold: Path) -> None:
        (tmp / name).write_bytes(edit(manifold.read_bytes()))
    return setup


def _rewritten(name: str, edit: Callable[[dict, dict], None]) -> Setup:
    """A copy of the manifold whose metadata and tensors went through ``edit(meta, tensors)``."""
    def setup(tmp: Path, manifold: Path) -> None:
        with safe_open(str(manifold), framework="pt") as f:
            meta = dict(f.metadata())
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        edit(meta, tensors)
        save_file(tensors, str(tmp / name), metadata=meta)
    return setup


def _flip_header(data: bytes) -> bytes:
    """Overwrite the first bytes of the JSON header: the length still fits, the text does not parse."""
    return data[:8] + bytes(b ^ 0xFF for b in data[8:24]) + data[24:]


def _inf_in_tensor(data: bytes) -> bytes:
    """Overwrite the first value of the first float INR tensor with +inf, in place in the file bytes."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    name = next(k for k, v in sorted(header.items()) if k.startswith("inr.") and v["dtype"] in ("F32", "F16"))
    start = 8 + n + header[name]["data_offsets"][0]
    inf = struct.pack("<f" if header[name]["dtype"] == "F32" else "<e", math.inf)
    return data[:start] + inf + data[start + len(inf):]


def _nan(meta: dict, tensors: dict) -> None:
    name = next(k for k in sorted(tensors) if k.startswith("inr.") and tensors[k].is_floating_point())
    tensors[name].view(-1)[0] = float("nan")


def _huge(meta: dict, tensors: dict) -> None:
    """Finite but extreme values: the loader accepts them, generation overflows to inf and NaN."""
    for name in [k for k in tensors if k.startswith("inr.codes.")]:
        tensors[name] = torch.full(tensors[name].shape, 3e38)  # float32: beyond float16, as save_manifold keeps such values


def _drop_tensor(meta: dict, tensors: dict) -> None:
    del tensors[next(k for k in sorted(tensors) if k.startswith("inr."))]


def _foreign(tmp: Path, _m: Path) -> None:
    """A checkpoint of another program: a plain torch model's state dict."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 10))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "foreign.safetensors"))


def _write(name: str, content: str | bytes) -> Setup:
    def setup(tmp: Path, _m: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.replace("{tmp}", str(tmp)).encode())
    return setup


def _fit_document(**fields) -> Setup:
    """A `metaforge fit --json` document of the good manifold, with ``fields`` changed (None: removed)."""
    def setup(tmp: Path, manifold: Path) -> None:
        import hashlib

        entry = {"config": CFG, "accuracy": 0.5, "latency_ms": {"value": 0.1, "stat": "p50", "source": "roofline"},
                 "memory_mb": {"value": 21.0, "source": "analytic"}, "params": 1000, "mflops": 0.5}
        doc = {"schema": "metaforge-fit/2", "profile": "host-cpu", "target": "onnx-fp32", "batch": 1, "manifold": str(manifold),
               "manifold_sha256": hashlib.sha256(manifold.read_bytes()).hexdigest(), **entry, "accuracy_split": "val",
               "budget": {"latency_ms": 1.0, "latency_stat": "p50", "memory_mb": 64.0, "accuracy_floor": 0.0},
               "feasible": True, "message": "", "pareto": [entry], "measured": [],
               "search": {"method": "enumerate", "evaluated": 1, "seconds": 0.1}, "latency_table": None}
        doc.update(fields)
        (tmp / "fit.json").write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    return setup


def _both(*setups: Setup) -> Setup:
    def setup(tmp: Path, manifold: Path) -> None:
        for s in setups:
            s(tmp, manifold)
    return setup


TRUNCATED = _copy_edited("trunc.safetensors", lambda d: d[: len(d) // 2])
FUTURE = _rewritten("future.safetensors", lambda meta, _t: meta.update(format_version="99"))
NAN = _rewritten("nan.safetensors", _nan)
A_FILE = _write("file.txt", "a regular file, not a folder\n")  # outputs under it cannot be created, even by root

# ---- bad profiles, targets and data ------------------------------------------------------------------------

PROFILE = """\
name: test-device
description: a device for tests
target: {target}
budget:
  latency_ms: {latency}
device:
  peak_gflops: {{fp32: 10}}
  memory_bandwidth_gbs: 5
  memory_mb: 512
  local: true
"""
TARGET = """\
name: test-target
format: {format}
precision: {precision}
tolerances: {{max_abs_diff: 1.0e-4}}
"""


def _profile(name: str = "dev.yaml", target: str = "onnx-fp32", latency: str = "2.5", extra: str = "") -> Setup:
    return _write(name, PROFILE.format(target=target, latency=latency) + extra)


def _target(name: str = "t.yaml", format: str = "onnx", precision: str = "fp32") -> Setup:
    return _write(name, TARGET.format(format=format, precision=precision))


def _imagefolder(*files: tuple[str, bytes]) -> Setup:
    """A class-per-subfolder dataset with two good PNGs per class plus ``files``."""
    def setup(tmp: Path, _m: Path) -> None:
        from PIL import Image

        for cls in ("cat", "dog"):
            (tmp / "images" / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("L", (8, 8), 40 * i).save(tmp / "images" / cls / f"{i}.png")
        for rel, content in files:
            (tmp / "images" / rel).write_bytes(content)
    return setup


TRAIN = ("train", "--preset", "tiny", "--epochs", "1", "--base-epochs", "1", "--device", "cpu", "--out", "{tmp}/m.safetensors")
TRAIN_OUT = ("m.safetensors", "m.run")
CFG = "w=8,16,32 d=2,2,2"

CASES = [
    # ---- info: every way a manifold file can be bad
    Case("info-missing-file", ("info", "{tmp}/nope.safetensors"), r"not found: .*nope\.safetensors; train one with `metaforge train"),
    Case("info-folder-not-file", ("info", "{tmp}"), r"is a folder, not a manifold file"),
    Case("info-empty-file", ("info", "{tmp}/empty.safetensors"), r"empty\.safetensors is empty", setup=_write("empty.safetensors", b"")),
    Case("info-garbage", ("info", "{tmp}/junk.safetensors"), r"junk\.safetensors is not a readable manifold",
         setup=_write("junk.safetensors", b"junk" * 100)),
    Case("info-truncated", ("info", "{tmp}/trunc.safetensors"), r"trunc\.safetensors .*truncated", setup=TRUNCATED),
    Case("info-json-truncated", ("info", "--json", "{tmp}/trunc.safetensors"), r"trunc\.safetensors .*truncated", setup=TRUNCATED),
    Case("info-header-bytes-flipped", ("info", "{tmp}/flip.safetensors"), r"flip\.safetensors .*corrupt",
         setup=_copy_edited("flip.safetensors", _flip_header)),
    Case("info-another-program", ("info", "{tmp}/foreign.safetensors"), r"foreign\.safetensors .*not a metaforge manifold", setup=_foreign),
    Case("info-future-version", ("info", "{tmp}/future.safetensors"), r"future\.safetensors has manifold format version '99'.*upgrade metaforge",
         setup=FUTURE),
    Case("info-damaged-metadata", ("info", "{tmp}/meta.safetensors"), r"meta\.safetensors is a damaged manifold",
         setup=_rewritten("meta.safetensors", lambda meta, _t: meta.update(space='{"in_channels": 1'))),
    Case("info-nan-weights", ("info", "{tmp}/nan.safetensors"), r"nan\.safetensors holds non-finite values \(NaN or inf\) in 'inr\.", setup=NAN),
    # ---- materialize
    Case("materialize-nan-weights", ("materialize", "{tmp}/nan.safetensors", "--config", CFG, "--out", "{tmp}/out"),
         r"non-finite values", setup=NAN, absent=("out",)),
    Case("materialize-inf-bytes-in-tensor", ("materialize", "{tmp}/inf.safetensors", "--config", CFG, "--out", "{tmp}/out"),
         r"inf\.safetensors holds non-finite values", setup=_copy_edited("inf.safetensors", _inf_in_tensor), absent=("out",)),
    Case("materialize-overflowing-weights", ("materialize", "{tmp}/huge.safetensors", "--config", CFG, "--out", "{tmp}/out"),
         r"generated non-finite weights for 'w=8,16,32 d=2,2,2'", setup=_rewritten("huge.safetensors", _huge), absent=("out",)),
    Case("materialize-missing-tensor", ("materialize", "{tmp}/drop.safetensors", "--config", CFG, "--out", "{tmp}/out"),
         r"drop\.safetensors is a damaged manifold: missing tensor 'inr\.codes\.image'", setup=_rewritten("drop.safetensors", _drop_tensor), absent=("out",)),
    Case("materialize-outside-space", ("materialize", "{m}", "--config", "w=8,16,64 d=2,2,2", "--out", "{tmp}/out"),
         r"'w=8,16,64 d=2,2,2' is outside .*valid ranges: w=2\.\.8,4\.\.16,8\.\.32 d=1\.\.2,1\.\.2,1\.\.2", absent=("out",)),
    Case("materialize-unreadable-config", ("materialize", "{m}", "--config", "w=8,16,32", "--out", "{tmp}/out"),
         r"cannot read config 'w=8,16,32'", absent=("out",)),
    Case("materialize-samples-zero", ("materialize", "{m}", "--config", CFG, "--samples", "0", "--out", "{tmp}/out"),
         r"Invalid value for '--samples': .*greater than or equal to 1", absent=("out",)),
    Case("materialize-out-under-a-file", ("materialize", "{m}", "--config", CFG, "--out", "{tmp}/file.txt/out"),
         r"cannot write .*file\.txt is a file, not a folder", setup=A_FILE),
    Case("materialize-out-in-proc", ("materialize", "{m}", "--config", CFG, "--out", "/proc/metaforge-test/model"),
         r"cannot write /proc/metaforge-test/model: /proc is not writable"),  # what stops root: chmod does not
    Case("materialize-out-is-a-file", ("materialize", "{m}", "--config", CFG, "--out", "{tmp}/file.txt"),
         r"output folder .*file\.txt: it is an existing file", setup=A_FILE),
    # ---- profile list / show
    Case("profile-list-unknown-option", ("profile", "list", "--colour"), r"No such option: --colour.*metaforge profile list --help"),
    Case("profile-show-unknown-name", ("profile", "show", "rasberry-pi-4"), r"no profile 'rasberry-pi-4'.*raspberry-pi-4"),
    Case("profile-show-typo-key", ("profile", "show", "{tmp}/dev.yaml"), r"dev\.yaml: unknown key 'budget\.latency_msec'",
         setup=_write("dev.yaml", PROFILE.format(target="onnx-fp32", latency="2").replace("latency_ms", "latency_msec"))),
    Case("profile-show-wrong-type", ("profile", "show", "{tmp}/dev.yaml"), r"dev\.yaml: 'budget\.latency_ms' must be a number, got 'fast'",
         setup=_profile(latency="fast")),
    Case("profile-show-negative-budget", ("profile", "show", "{tmp}/dev.yaml"), r"dev\.yaml: 'budget\.latency_ms' must be positive, got -3",
         setup=_profile(latency="-3")),
    Case("profile-show-empty-file", ("profile", "show", "{tmp}/dev.yaml"), r"dev\.yaml: expected a mapping", setup=_write("dev.yaml", "")),
    Case("profile-show-unknown-format", ("profile", "show", "{tmp}/dev.yaml"), r"'format' is 'onnx2'; valid values: onnx, tflite, tensorrt",
         setup=_both(_target(format="onnx2"), _profile(target="{tmp}/t.yaml"))),
    Case("profile-show-unknown-precision", ("profile", "show", "{tmp}/dev.yaml"), r"'precision' is 'fp8'; valid values: fp32, fp16, int8",
         setup=_both(_target(precision="fp8"), _profile(target="{tmp}/t.yaml"))),
    # ---- profile measure
    Case("measure-truncated-manifold", ("profile", "measure", "host-cpu", "--manifold", "{tmp}/trunc.safetensors", "--out", "{tmp}/t.json"),
         r"trunc\.safetensors .*truncated", setup=TRUNCATED, absent=("t.json",)),
    Case("measure-another-device", ("profile", "measure", "raspberry-pi-4", "--manifold", "{m}", "--out", "{tmp}/t.json"),
         r"raspberry-pi-4 describes another device", code=4, absent=("t.json",)),
    Case("measure-points-zero", ("profile", "measure", "host-cpu", "--manifold", "{m}", "--points", "0", "--out", "{tmp}/t.json"),
         r"Invalid value for '--points': .*greater than or equal to 2", absent=("t.json",)),
    Case("measure-out-under-a-file", ("profile", "measure", "host-cpu", "--manifold", "{m}", "--out", "{tmp}/file.txt/t.json"),
         r"cannot write .*file\.txt", setup=A_FILE),
    # ---- fit
    Case("fit-negative-budget", ("fit", "{m}", "--profile", "host-cpu", "--latency-ms", "-1"), r"'budget\.latency_ms' must be positive, got -1"),
    Case("fit-impossible-budget", ("fit", "{m}", "--profile", "host-cpu", "--latency-ms", "1e-6"),
         r"no config of this manifold meets latency <= 1e-06 ms .*raise the budget", code=3),
    Case("fit-accuracy-floor-above-one", ("fit", "{m}", "--profile", "host-cpu", "--accuracy-floor", "1.5"),
         r"'budget\.accuracy_floor' must lie in \[0, 1\], got 1\.5"),
    Case("fit-budget-not-a-number", ("fit", "{m}", "--profile", "host-cpu", "--memory-mb", "lots"),
         r"Invalid value for '--memory-mb'"),
    Case("fit-profile-typo", ("fit", "{m}", "--profile", "host-cpux"), r"no profile 'host-cpux'.*host-cpu"),
    Case("fit-future-version", ("fit", "{tmp}/future.safetensors", "--profile", "host-cpu"), r"format version '99'", setup=FUTURE),
    Case("fit-corrupt-table", ("fit", "{m}", "--profile", "host-cpu", "--table", "{tmp}/t.json"),
         r"t\.json is a damaged latency table", setup=_write("t.json", '{"schema": "metaforge-latency-table/1", "entries": [{"kind": "stem"}]}')),
    Case("fit-json-under-a-file", ("fit", "{m}", "--profile", "host-cpu", "--json", "{tmp}/file.txt/fit.json"),
         r"cannot write .*file\.txt", setup=A_FILE),
    Case("fit-damaged-accuracy-record", ("fit", "{tmp}/acc.safetensors", "--profile", "host-cpu"),
         r"acc\.safetensors has a damaged accuracy record \(.*\); retrain it",
         setup=_rewritten("acc.safetensors", lambda meta, _t: meta.update(accuracy_model='{"schema": "metaforge-accuracy-model/1"}'))),
    Case("fit-measure-another-device", ("fit", "{m}", "--profile", "raspberry-pi-4", "--measure"), r"--measure is not possible here", code=4),
    # ---- bundle / profile ingest
    Case("bundle-truncated-manifold", ("bundle", "--manifold", "{tmp}/trunc.safetensors", "--profile", "host-cpu", "--out", "{tmp}/b"),
         r"trunc\.safetensors .*truncated", setup=TRUNCATED, absent=("b",)),
    Case("bundle-profile-typo", ("bundle", "--manifold", "{m}", "--profile", "jetson-nanoo", "--out", "{tmp}/b"),
         r"no profile 'jetson-nanoo'.*jetson-nano", absent=("b",)),
    Case("bundle-out-under-a-file", ("bundle", "--manifold", "{m}", "--profile", "host-cpu", "--out", "{tmp}/file.txt/b"),
         r"cannot write .*file\.txt is a file, not a folder", setup=A_FILE),
    Case("bundle-fit-not-json", ("bundle", "--manifold", "{m}", "--profile", "host-cpu", "--fit", "{tmp}/fit.json", "--out", "{tmp}/b"),
         r"fit\.json", setup=_write("fit.json", "{not json"), absent=("b",)),
    Case("ingest-missing-results", ("profile", "ingest", "{tmp}/results.json", "--profile", "host-cpu", "--out", "{tmp}/t.json"),
         r"cannot read results .*results\.json", absent=("t.json",)),
    Case("ingest-another-program", ("profile", "ingest", "{tmp}/results.json", "--profile", "host-cpu", "--out", "{tmp}/t.json"),
         r"results\.json is not a bundle results file", setup=_write("results.json", '{"hello": 1}'), absent=("t.json",)),
    Case("ingest-results-of-another-device", ("profile", "ingest", "{tmp}/results.json", "--profile", "host-cpu", "--out", "{tmp}/t.json"),
         r"holds measurements for profile raspberry-pi-4, not host-cpu",
         setup=_write("results.json", '{"schema": "metaforge.bundle-results/1", "profile": "raspberry-pi-4"}'), absent=("t.json",)),
    Case("ingest-damaged-results", ("profile", "ingest", "{tmp}/results.json", "--profile", "host-cpu", "--out", "{tmp}/t.json"),
         r"results\.json is a damaged results file \(field 'target'",
         setup=_write("results.json", '{"schema": "metaforge.bundle-results/1", "profile": "host-cpu"}'), absent=("t.json",)),
    Case("bundle-fit-malformed-front", ("bundle", "--manifold", "{m}", "--profile", "host-cpu", "--fit", "{tmp}/fit.json", "--out", "{tmp}/b"),
         r"fit\.json has a malformed 'pareto' list", absent=("b",),
         setup=_fit_document(pareto=[{"config": CFG, "latency_ms": 0.1}])),
    # ---- export
    Case("export-unknown-format", ("export", "--manifold", "{m}", "--config", CFG, "--format", "onnx2", "--out", "{tmp}/e"),
         r"unknown format 'onnx2'.*onnx, tflite, tensorrt", absent=("e",)),
    Case("export-unknown-precision", ("export", "--manifold", "{m}", "--config", CFG, "--format", "tflite", "--precision", "fp8", "--out", "{tmp}/e"),
         r"unknown precision 'fp8'.*fp32, fp16, int8", absent=("e",)),
    Case("export-onnx-fp16", ("export", "--manifold", "{m}", "--config", CFG, "--format", "onnx", "--precision", "fp16", "--out", "{tmp}/e"),
         r"no target for onnx fp16; shipped targets: .*onnx-int8", absent=("e",)),
    Case("export-two-sources", ("export", "--manifold", "{m}", "--config", CFG, "--profile", "host-cpu", "--out", "{tmp}/e"),
         r"give exactly one of .*got --profile, --config", absent=("e",)),
    Case("export-corrupt-fit-document", ("export", "--manifold", "{m}", "--fit", "{tmp}/fit.json", "--out", "{tmp}/e"),
         r"cannot read fit document .*fit\.json", setup=_write("fit.json", '{"config": "w=8'), absent=("e",)),
    Case("export-infeasible-fit-document", ("export", "--manifold", "{m}", "--fit", "{tmp}/fit.json", "--out", "{tmp}/e"),
         r"fit\.json records no feasible config \(too tight\)", setup=_fit_document(feasible=False, message="too tight"), absent=("e",)),
    Case("export-fit-for-another-manifold", ("export", "--manifold", "{m}", "--fit", "{tmp}/fit.json", "--out", "{tmp}/e"),
         r"fit\.json was fitted on another manifold \(other\.safetensors\), not .*tiny\.safetensors",
         setup=_fit_document(manifold="other.safetensors", manifold_sha256="0" * 64), absent=("e",)),
    Case("export-fit-older-schema", ("export", "--manifold", "{m}", "--fit", "{tmp}/fit.json", "--out", "{tmp}/e"),
         r"fit\.json is not a metaforge-fit/2 document \(an older metaforge wrote it", setup=_fit_document(schema="metaforge-fit/1"),
         absent=("e",)),
    Case("export-target-typo-key", ("export", "--manifold", "{m}", "--config", CFG, "--target", "{tmp}/t.yaml", "--out", "{tmp}/e"),
         r"t\.yaml: unknown key 'tolerance'", setup=_write("t.yaml", "name: t\nformat: onnx\nprecision: fp32\ntolerance: {}\n"), absent=("e",)),
    Case("export-outside-space", ("export", "--manifold", "{m}", "--config", "w=9,16,32 d=2,2,2", "--format", "onnx", "--out", "{tmp}/e"),
         r"outside this manifold's space", absent=("e",)),
    Case("export-another-program", ("export", "--manifold", "{tmp}/foreign.safetensors", "--config", CFG, "--format", "onnx", "--out", "{tmp}/e"),
         r"not a metaforge manifold", setup=_foreign, absent=("e",)),
    Case("export-out-under-a-file", ("export", "--manifold", "{m}", "--config", CFG, "--format", "onnx", "--out", "{tmp}/file.txt/e"),
         r"cannot write .*file\.txt", setup=A_FILE),
    # ---- check
    Case("check-unknown-profile", ("check", "--manifold", "{m}", "--profile", "jetson-nan", "--out", "{tmp}/c"),
         r"no profile 'jetson-nan'.*jetson-nano", absent=("c",)),
    Case("check-truncated-manifold", ("check", "--manifold", "{tmp}/trunc.safetensors", "--profile", "host-cpu", "--out", "{tmp}/c"),
         r"trunc\.safetensors .*truncated", setup=TRUNCATED, absent=("c",)),
    Case("check-profile-wrong-type", ("check", "--manifold", "{m}", "--profile", "{tmp}/dev.yaml", "--out", "{tmp}/c"),
         r"dev\.yaml: 'batch' must be an integer, got 'two'", setup=_profile(extra="batch: two\n"), absent=("c",)),
    Case("check-out-under-a-file", ("check", "--manifold", "{m}", "--profile", "host-cpu", "--out", "{tmp}/file.txt/c"),
         r"cannot write .*file\.txt", setup=A_FILE),
    Case("check-junit-under-a-file", ("check", "--manifold", "{m}", "--profile", "host-cpu", "--out", "{tmp}/c", "--junit", "{tmp}/file.txt/j.xml"),
         r"cannot write .*file\.txt", setup=A_FILE, absent=("c",)),
    # ---- train: data folders, settings, outputs
    Case("train-imagefolder-missing-folder", (*TRAIN, "--dataset", "imagefolder", "--data-dir", "{tmp}/nowhere"),
         r"--data-dir .*nowhere is not a folder", absent=TRAIN_OUT),
    Case("train-imagefolder-empty-folder", (*TRAIN, "--dataset", "imagefolder", "--data-dir", "{tmp}/images"),
         r"images has 0 class subfolder\(s\)", setup=lambda tmp, _m: (tmp / "images").mkdir(), absent=TRAIN_OUT),
    Case("train-imagefolder-non-image-file", (*TRAIN, "--dataset", "imagefolder", "--data-dir", "{tmp}/images"),
         r"notes\.txt is not an image file", setup=_imagefolder(("dog/notes.txt", b"a note")), absent=TRAIN_OUT),
    Case("train-imagefolder-broken-image", (*TRAIN, "--dataset", "imagefolder", "--data-dir", "{tmp}/images"),
         r"broken\.png is not a readable image", setup=_imagefolder(("cat/broken.png", b"\x89PNG\r\n\x1a\n not really")), absent=TRAIN_OUT),
    Case("train-cifar10-without-data", (*TRAIN, "--dataset", "cifar10"), r"cifar10 needs --data-dir", absent=TRAIN_OUT),
    Case("train-unknown-dataset", (*TRAIN, "--dataset", "imagenet"), r"unknown dataset 'imagenet'.*digits", absent=TRAIN_OUT),
    Case("train-unknown-preset", (*TRAIN, "--preset", "resnet18"), r"unknown preset 'resnet18'.*resnet20", absent=TRAIN_OUT),
    Case("train-zero-epochs", (*TRAIN, "--epochs", "0"), r"--epochs must be at least 1, got 0", absent=TRAIN_OUT),
    Case("train-zero-lr", (*TRAIN, "--lr", "0"), r"--lr must be positive, got 0", absent=TRAIN_OUT),
    Case("train-zero-mlp-lr", (*TRAIN, "--mlp-lr", "0"), r"--mlp-lr must be positive, got 0", absent=TRAIN_OUT),  # not the recipe's default
    Case("train-progressive-shared-fraction-above-random-sizes", (*TRAIN, "--recipe", "progressive", "--shared-fraction", "4"),
         r"--shared-fraction must lie between 0 and --random-sizes \(3\), got 4", absent=TRAIN_OUT),
    Case("train-unknown-channel-order", (*TRAIN, "--channel-order", "random"), r"unknown channel order 'random'; choose one of: smooth, importance, usage", absent=TRAIN_OUT),
    Case("train-unknown-width-map", (*TRAIN, "--width-map", "sideways"), r"unknown width map 'sideways'; choose one of: resample, nested", absent=TRAIN_OUT),
    Case("train-unknown-bn-mode", (*TRAIN, "--bn-mode", "batch"), r"unknown BN mode 'batch'", absent=TRAIN_OUT),
    Case("train-limit-zero", (*TRAIN, "--limit", "0"), r"limit 0 is invalid", absent=TRAIN_OUT),
    Case("train-base-is-a-manifold", (*TRAIN, "--base", "{m}"), r"tiny\.safetensors is a metaforge manifold, not a model", absent=TRAIN_OUT),
    Case("train-base-truncated", (*TRAIN, "--base", "{tmp}/trunc.safetensors"), r"trunc\.safetensors .*truncated", setup=TRUNCATED,
         absent=TRAIN_OUT),
    Case("train-out-under-a-file", (*TRAIN[:-1], "{tmp}/file.txt/m.safetensors"), r"cannot write .*file\.txt", setup=A_FILE),
    Case("train-resume-not-a-run", ("train", "--resume", "{tmp}"), r"is not a training run folder"),
]


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_nonzero_and_leaves_nothing(case: Case, tiny_run, tmp_path: Path) -> None:
    manifold = tiny_run[0]
    if case.setup:
        case.setup(tmp_path, manifold)
    before = _tree(tmp_path)
    args = [a.format(tmp=tmp_path, m=manifold) for a in case.argv]
    r = subprocess.run([sys.executable, "-m", "metaforge", *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"stderr is not one line:\n{r.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(case.error, lines[0]), f"{case.error!r} not in {lines[0]!r}"
    assert r.returncode == case.code, (r.returncode, lines[0])
    for rel in case.absent:
        assert not (tmp_path / rel).exists(), f"{rel} was left behind"
    assert _tree(tmp_path) == before, f"files left behind: {sorted(_tree(tmp_path) - before)}"


def test_the_table_covers_every_command_and_issue_item() -> None:
    """At least 30 cases, every command of the brief, and each kind of bad input the issue lists."""
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    commands = {" ".join(c.argv[:2]) if c.argv[0] == "profile" else c.argv[0] for c in CASES}
    assert commands >= {"train", "info", "materialize", "profile list", "profile show", "profile measure", "profile ingest", "fit",
                        "export", "check", "bundle"}
    ids = " ".join(c.id for c in CASES)
    for item in ("truncated", "flipped", "another-program", "future-version", "typo", "wrong-type", "negative-budget",
                 "impossible-budget", "outside-space", "missing-folder", "empty-folder", "non-image", "under-a-file",
                 "unknown-format", "unknown-precision", "nan-weights"):
        assert item in ids, item
