"""BN recalibration in bf16 (the default where the CPU has native bf16) against the exact fp32 pass."""

from __future__ import annotations

import pytest
import torch

import metaforge.evaluate as evaluate
from metaforge.errors import ConfigError
from metaforge.evaluate import recalibrate_batchnorm, recalibration_dtype
from metaforge.nets import ResNet
from metaforge.space import ArchConfig


def _stats(net):
    return [(m.running_mean.clone(), m.running_var.clone()) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize("widths", [(16, 32, 64), (6, 12, 24)])  # channels-last pass, and the default layout
def test_bf16_pass_keeps_fp32_statistics_close_to_the_exact_ones(widths):
    torch.manual_seed(0)
    net = ResNet(ArchConfig(widths, (2, 2, 2)), 1, 10, "batch")
    images = torch.randn(64, 1, 12, 12)
    exact = _stats(recalibrate_batchnorm(net, images, precision="fp32"))
    fast = _stats(recalibrate_batchnorm(net, images, precision="bf16"))
    assert all(m.dtype == v.dtype == torch.float32 for m, v in fast)  # the folded weights stay fp32
    for (m0, v0), (m1, v1) in zip(exact, fast):
        torch.testing.assert_close(m1, m0, atol=0.05, rtol=0.02)
        torch.testing.assert_close(v1, v0, atol=0.05, rtol=0.05)
    assert any(not torch.equal(m0, m1) for (m0, _), (m1, _) in zip(exact, fast))  # it did run in bf16


def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(evaluate, "native_bf16", lambda: True)
    assert recalibration_dtype("auto") == torch.bfloat16 and recalibration_dtype("auto", "cuda") == torch.float32
    monkeypatch.setattr(evaluate, "native_bf16", lambda: False)
    assert recalibration_dtype("auto") == torch.float32 and recalibration_dtype("bf16") == torch.bfloat16
    assert recalibration_dtype("fp32") == torch.float32
    with pytest.raises(ValueError, match="one of auto, bf16, fp32"):
        recalibration_dtype("fp16")


def test_manifold_fp32_recalibration_is_the_exact_old_pass(tiny_run):
    from metaforge.checkpoint import load_manifold
    from metaforge.fold import fold_batchnorm

    path, _, _ = tiny_run
    m = load_manifold(path)
    m.calibration = m.calibration[:256]  # the old pass: one batch of every image (the pass now runs batches of 256)
    config = m.space.full
    net = ResNet(config, m.space.in_channels, m.space.num_classes, "batch")
    net.load_state_dict(m.generate(config), strict=False)
    for bn in (b for b in net.modules() if isinstance(b, torch.nn.BatchNorm2d)):  # the pass before issue 14
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        net.train()(m.info.normalization.apply(m.calibration))
    old = fold_batchnorm(net.eval())
    m.recalibration = "fp32"
    exact = m.materialize(config).state_dict()
    assert all(torch.equal(exact[k], v) for k, v in old.state_dict().items())
    m.recalibration = "bf16"
    fast = m.materialize(config).state_dict()
    assert all(torch.allclose(fast[k], v, atol=0.05, rtol=0.05) for k, v in exact.items())
    with pytest.raises(ConfigError, match="recalibration must be one of"):
        type(m)(m.inr, m.info, m.calibration, recalibration="half")


def test_a_quick_materialisation_recalibrates_on_the_first_images_only(tiny_run):
    """``calibration=n``: the network of a manifold that stored only its first n images; the default
    uses all of them, and those statistics differ."""
    from metaforge.checkpoint import load_manifold

    path, _, _ = tiny_run
    m = load_manifold(path)
    m.recalibration = "fp32"
    config = m.space.smallest
    assert len(m.calibration) > 64
    quick = m.materialize(config, calibration=64).state_dict()
    full = m.materialize(config).state_dict()
    m.calibration = m.calibration[:64]
    truncated = m.materialize(config).state_dict()
    assert all(torch.equal(quick[k], v) for k, v in truncated.items())
    assert any(not torch.equal(full[k], v) for k, v in quick.items())
