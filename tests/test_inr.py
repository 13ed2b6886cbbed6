import torch

from metaforge.inr import INRConfig, Jitter, WeightINR
from metaforge.nets import ResNet
from metaforge.space import ArchConfig, make_space

SPACE = make_space("tiny", 1, 10, 8)


def _truth(bn: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    net = ResNet(SPACE.full, 1, 10, "batch" if bn else "none")
    return {k: v for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}


def test_generates_every_tensor_of_any_config_with_the_right_shape():
    inr = WeightINR(SPACE, INRConfig(), bn=False)
    for config in (SPACE.full, SPACE.smallest, ArchConfig((5, 11, 20), (1, 2, 1))):
        params = inr.generate(config)
        expected = ResNet(config, 1, 10, "none").state_dict()
        assert set(params) == set(expected)
        assert all(params[k].shape == v.shape for k, v in expected.items())


def test_weight_grid_reproduces_the_full_size_network_exactly():
    for bn in (False, True):
        truth = _truth(bn)
        inr = WeightINR(SPACE, INRConfig(), bn=bn)
        inr.fit_scales(truth)
        inr.init_codes(truth)
        inr.init_grids(truth)
        params = inr.generate(SPACE.full)
        for name, t in truth.items():
            torch.testing.assert_close(params[name], t, atol=1e-5, rtol=1e-4)


def test_fan_in_scaling_keeps_output_magnitude_at_half_width():
    """A constant weight field at half the input width doubles each weight (sum preserved)."""
    truth = _truth(False)
    truth = {k: torch.full_like(v, 0.01) if v.dim() > 1 else v for k, v in truth.items()}
    inr = WeightINR(SPACE, INRConfig(), bn=False)
    inr.fit_scales({k: v + 1e-3 * torch.randn_like(v) for k, v in truth.items()})
    inr.init_grids(truth)
    full = inr.generate(SPACE.full)["stages.2.1.conv1.conv.weight"]
    half = inr.generate(SPACE.scaled(0.5))["stages.2.1.conv1.conv.weight"]
    torch.testing.assert_close(half.sum(1).mean(), full.sum(1).mean(), rtol=1e-4, atol=1e-6)


def test_coordinate_noise_is_seeded():
    inr = WeightINR(SPACE, INRConfig(), bn=False)
    inr.init_grids(_truth(False))
    a = inr.generate(SPACE.scaled(0.5), Jitter(torch.Generator().manual_seed(3)))
    b = inr.generate(SPACE.scaled(0.5), Jitter(torch.Generator().manual_seed(3)))
    c = inr.generate(SPACE.scaled(0.5))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
