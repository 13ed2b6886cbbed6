import json

import pytest
import torch
from safetensors.torch import save_file

from metaforge import load_manifold
from metaforge.checkpoint import save_manifold
from metaforge.errors import CheckpointError


def test_round_trip_gives_identical_networks(tiny_run, tmp_path):
    path, manifold, _ = tiny_run
    loaded = load_manifold(path)
    copy = tmp_path / "copy.safetensors"
    save_manifold(loaded, copy)
    again = load_manifold(copy)
    assert again.space == manifold.space
    assert again.info.classes == manifold.info.classes
    assert again.info.accuracy == manifold.info.accuracy
    x = torch.randn(4, 1, 8, 8)
    for config in (manifold.space.full, manifold.space.smallest):
        torch.testing.assert_close(again.materialize(config)(x), manifold.materialize(config)(x), atol=1e-5, rtol=1e-5)


def test_file_keeps_float16_and_is_smaller_than_the_network(tiny_run):
    """The INR is stored in float16 (the table was measured on those weights) and the file, less its
    calibration images (uint8, as many as --calibration-size asks), is smaller than the full
    network's float32 weights."""
    from safetensors import safe_open

    from metaforge.nets import ResNet

    path, manifold, _ = tiny_run
    with safe_open(str(path), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys() if k.startswith("inr.")}
    assert dtypes == {"F16"}
    full = ResNet(manifold.space.full, manifold.space.in_channels, manifold.space.num_classes)
    assert path.stat().st_size - manifold.calibration.numel() < 4 * sum(p.numel() for p in full.parameters())
    assert manifold.calibration.dtype == torch.uint8
    loaded = load_manifold(path)
    x = torch.randn(4, 1, 8, 8)
    for config in (manifold.space.full, manifold.space.smallest):  # what training measured is what the file gives
        assert torch.equal(loaded.materialize(config)(x), manifold.materialize(config)(x))


def test_truncated_file_is_a_clear_error(tiny_run, tmp_path):
    path, _, _ = tiny_run
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_manifold(bad)


def test_garbage_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00\x01not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="not a readable manifold"):
        load_manifold(bad)


def test_foreign_safetensors_file_is_rejected(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a metaforge manifold"):
        load_manifold(foreign)


def _rewritten(path, out, edit):
    """A copy of manifold ``path`` whose header and tensors went through ``edit(meta, tensors)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(meta, tensors)
    save_file(tensors, str(out), metadata=meta)
    return out


def test_future_format_version_is_rejected(tiny_run, tmp_path):
    future = _rewritten(tiny_run[0], tmp_path / "future.safetensors", lambda meta, _: meta.update(format_version="99"))
    with pytest.raises(CheckpointError, match="format version '99'"):
        load_manifold(future)


def test_nan_weights_are_rejected(tiny_run, tmp_path):
    def poison(_meta, tensors):
        name = next(k for k in tensors if k.startswith("inr.") and tensors[k].is_floating_point())
        tensors[name] = torch.full_like(tensors[name], float("nan"))

    bad = _rewritten(tiny_run[0], tmp_path / "nan.safetensors", poison)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_manifold(bad)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match="metaforge train"):
        load_manifold(tmp_path / "nope.safetensors")


def test_metadata_carries_what_users_need(tiny_run):
    path, _, cfg = tiny_run
    from metaforge.checkpoint import read_header

    header = read_header(path)
    info = json.loads(header["info"])
    assert header["metaforge_version"]
    assert info["dataset"] == "digits" and len(info["classes"]) == 10
    assert set(info["normalization"]) >= {"mean", "std", "scale"}
    assert info["train_config"]["preset"] == "tiny"
    assert {"config", "params", "mflops", "top1", "seen"} <= set(info["accuracy"][0])
    assert json.loads(header["space"])["max_widths"] == [8, 16, 32]
