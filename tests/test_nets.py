import pytest
import torch

from metaforge.cost import count_cost
from metaforge.fold import fold_batchnorm
from metaforge.layout import layers, tensor_names
from metaforge.nets import ResNet
from metaforge.permute import (channel_permutations, channel_scores, channel_variation, importance_permutations, permute_channels,
                               smoothing_permutations)
from metaforge.space import ArchConfig


def _trained_like(config: ArchConfig) -> ResNet:
    """A BN network with non-trivial statistics, as after training."""
    torch.manual_seed(0)
    m = ResNet(config, 3, 10, "batch")
    for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
    return m.eval()


def test_network_has_only_the_layers_of_its_config():
    small = ResNet(ArchConfig((4, 8, 16), (1, 1, 1)), 3, 10)
    convs = [m for m in small.modules() if isinstance(m, torch.nn.Conv2d)]
    # stem + 3 blocks x 2 convs + 2 strided shortcuts
    assert len(convs) == 1 + 6 + 2
    assert len(convs) == len(layers(small.config)) - 1  # every layer but fc is a conv
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("in_channels,norm", [(1, "batch"), (3, "none")])
def test_the_inr_layout_names_every_tensor_of_the_network(in_channels, norm):
    """The layout needs only the config: the image's channels are a width (group_width), not a layer."""
    net = ResNet(ArchConfig((4, 8, 8), (2, 1, 2)), in_channels, 10, norm)
    names = [n for n, t in net.state_dict().items() if t.is_floating_point() and "running" not in n]
    assert tensor_names(net.config, bn=norm != "none") == names
    convs = [n.removesuffix(".conv") for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert [x.path for x in layers(net.config)] == [*convs, "fc"]


def test_half_width_is_about_a_quarter_of_the_flops_and_params():
    full = count_cost(ResNet(ArchConfig((16, 32, 64), (3, 3, 3)), 3, 10), (3, 32, 32))
    half = count_cost(ResNet(ArchConfig((8, 16, 32), (3, 3, 3)), 3, 10), (3, 32, 32))
    shallow = count_cost(ResNet(ArchConfig((16, 32, 64), (1, 1, 1)), 3, 10), (3, 32, 32))
    assert 40e6 < full.macs < 42e6  # the published ~41M MACs of ResNet-20 on CIFAR
    assert 0.22 < half.macs / full.macs < 0.28
    assert 0.22 < half.params / full.params < 0.28
    assert 0.3 < shallow.macs / full.macs < 0.4


def test_batchnorm_folding_preserves_the_function():
    m = _trained_like(ArchConfig((8, 16, 32), (2, 2, 2)))
    x = torch.randn(8, 3, 16, 16)
    folded = fold_batchnorm(m)
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in folded.modules())
    torch.testing.assert_close(folded(x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_permutation_smoothing_preserves_the_function_and_smooths(norm):
    m = _trained_like(ArchConfig((8, 16, 32), (2, 2, 2)))
    if norm == "none":
        m = fold_batchnorm(m)
    perms = smoothing_permutations(m)
    assert set(perms) == {"stream0", "stream1", "stream2"} | {f"inner{s}.{j}" for s in range(3) for j in range(2)}
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms.values())
    p = permute_channels(m, perms)
    x = torch.randn(8, 3, 16, 16)
    torch.testing.assert_close(p(x), m(x), atol=1e-5, rtol=1e-5)
    assert channel_variation(p) < channel_variation(m)


def test_importance_order_puts_the_largest_l1_channels_first_and_preserves_the_function():
    m = _trained_like(ArchConfig((8, 16, 32), (2, 2, 2)))
    before = channel_scores(m)
    assert any(not torch.equal(s.sort(descending=True).values, s) for s in before.values())  # not sorted to start with
    p = permute_channels(m, importance_permutations(m))
    for group, score in channel_scores(p).items():
        torch.testing.assert_close(score, before[group].sort(descending=True).values, msg=group)
    x = torch.randn(8, 3, 16, 16)
    torch.testing.assert_close(p(x), m(x), atol=1e-5, rtol=1e-5)


def test_usage_order_sorts_channels_by_the_weights_that_read_them_and_preserves_the_function():
    m = _trained_like(ArchConfig((8, 16, 32), (2, 2, 2)))
    state = m.state_dict()
    readers = channel_scores(m, by="readers")
    # a block's inner channels are read by its second conv alone; a stream by the first conv of each later block of its
    # stage, the next stage's first conv and projection, or the classifier
    torch.testing.assert_close(readers["inner1.0"], state["stages.1.0.conv2.conv.weight"].abs().sum((0, 2, 3)))
    torch.testing.assert_close(readers["stream2"], state["stages.2.1.conv1.conv.weight"].abs().sum((0, 2, 3)) + state["fc.weight"].abs().sum(0))
    stream1 = sum(state[f"stages.{name}.conv.weight"].abs().sum((0, 2, 3)) for name in ("1.1.conv1", "2.0.conv1", "2.0.shortcut"))
    torch.testing.assert_close(readers["stream1"], stream1)
    assert not torch.equal(readers["stream2"].argsort(), channel_scores(m)["stream2"].argsort())  # not the writers' order
    p = permute_channels(m, channel_permutations(m, "usage"))
    for group, score in channel_scores(p, by="readers").items():
        torch.testing.assert_close(score, readers[group].sort(descending=True).values, msg=group)
    x = torch.randn(8, 3, 16, 16)
    torch.testing.assert_close(p(x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("widths", [(16, 32, 64), (8, 16, 32)])  # channels-last pass, and the default layout
def test_batchnorm_recalibration_takes_the_statistics_of_the_images(widths):
    from metaforge.evaluate import recalibrate_batchnorm

    torch.manual_seed(0)
    net = ResNet(ArchConfig(widths, (1, 1, 1)), 1, 10, "batch")
    images = torch.randn(96, 1, 12, 12)
    net.train()(torch.randn(8, 1, 12, 12) * 5 + 3)  # stale statistics that must not survive
    recalibrate_batchnorm(net, images)  # one batch, as materialisation calls it
    assert not net.training
    assert all(p.is_contiguous() for p in net.parameters())  # handed back in the default layout
    stem_bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        out = first_conv(images)
    torch.testing.assert_close(stem_bn.running_mean, out.mean((0, 2, 3)), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stem_bn.running_var, out.var((0, 2, 3)), atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_forward_inplace_computes_forward(norm):
    """The in-place pass recalibration uses gives forward's values, in train mode (batch statistics) and eval."""
    torch.manual_seed(0)
    net = ResNet(ArchConfig((4, 8, 8), (2, 1, 2)), 1, 10, norm)  # projection and identity shortcuts
    x = torch.randn(16, 1, 12, 12)
    for train in (True, False):
        net.train(train)
        with torch.no_grad():
            torch.testing.assert_close(net.forward_inplace(x.clone()), net(x), atol=0, rtol=0)
