"""The smaller sizes' distillation losses: KL and AlphaNet's adaptive alpha-divergence."""

import pytest
import torch

from metaforge.errors import ConfigError
from metaforge.train.config import ProgressiveConfig
from metaforge.train.divergence import adaptive_alpha, alpha_divergence, distill_loss, kl, teacher_probs


def logits_and_teacher(seed: int = 0, sharp: float = 0.5, student: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(8, 10, generator=gen).mul(student).requires_grad_(), torch.randn(8, 10, generator=gen).mul(sharp).softmax(1)


def grad(loss_fn, z: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss_fn(z), z)
    return g


def test_alpha_one_is_kl_in_value_and_gradient_when_nothing_is_clipped():
    z, p = logits_and_teacher()
    value, _ = alpha_divergence(z, p, 1.0, clip=1e9)
    torch.testing.assert_close(value.mean(), kl(z, p).detach())
    torch.testing.assert_close(grad(lambda z: alpha_divergence(z, p, 1.0, clip=1e9)[1].mean(), z), grad(lambda z: kl(z, p), z))


def test_alpha_minus_one_follows_its_closed_form_and_the_clip_bounds_its_gradient():
    z, p = logits_and_teacher(1)
    closed = lambda z: ((z.softmax(1) ** 2 / p).sum(1) - 1) / 2  # D_-1(p || q) = (sum q^2/p - 1) / 2
    value, _ = alpha_divergence(z, p, -1.0, clip=1e9)
    torch.testing.assert_close(value, closed(z).detach())
    torch.testing.assert_close(grad(lambda z: alpha_divergence(z, p, -1.0, clip=1e9)[1].sum(), z), grad(lambda z: closed(z).sum(), z))
    # a student sure of a class the teacher all but rules out: the unclipped gradient is large; clipped, every weight
    # there sits at the clip and the gradient all but vanishes (the clip bounds the step, it does not correct the student)
    far = torch.zeros(1, 10)
    far[0, 3] = 8.0
    teacher = torch.full((1, 10), 0.1)
    teacher[0, 3], teacher[0, 0] = 1e-4, 0.1 + 0.1 - 1e-4
    far.requires_grad_()
    assert grad(lambda z: alpha_divergence(z, teacher, -1.0, clip=1e9)[1].sum(), far).abs().max() > 10
    assert grad(lambda z: alpha_divergence(z, teacher, -1.0, clip=5.0)[1].sum(), far).abs().max() < 0.1


def test_the_adaptive_loss_takes_the_larger_divergence_per_image():
    z, p = logits_and_teacher(2, sharp=1.0, student=3.0)
    neg, _ = alpha_divergence(z, p, -1.0)
    pos, _ = alpha_divergence(z, p, 1.0)
    assert (neg > pos).any() and (pos > neg).any()  # the batch has images of both kinds
    torch.testing.assert_close(adaptive_alpha(z, p).detach(), torch.maximum(neg, pos).mean())
    assert adaptive_alpha(p.log().requires_grad_(), p).item() == pytest.approx(0.0, abs=1e-6)  # zero at the teacher


def test_the_loss_is_chosen_by_name_and_an_unknown_one_is_refused():
    z, p = logits_and_teacher(3)
    torch.testing.assert_close(distill_loss("kl", z, p), kl(z, p))
    torch.testing.assert_close(distill_loss("alpha", z, p), adaptive_alpha(z, p))
    with pytest.raises(ConfigError, match="unknown distillation loss 'js'; choose one of: kl, alpha"):
        ProgressiveConfig(distill_loss="js")
    with pytest.raises(ConfigError, match="--distill-loss alpha is the loss of inplace distillation"):
        ProgressiveConfig(distill_loss="alpha", inplace_distill=False, label_weight=0.0)


def test_the_temperature_softens_the_teacher_and_keeps_the_gradients_scale():
    z, _ = logits_and_teacher(4)
    teacher = torch.tensor([[6.0, 0.0, 2.0] + [0.0] * 7])
    soft1, soft3 = teacher_probs(teacher), teacher_probs(teacher, 3.0)
    assert soft1[0, 0] > 0.95 and 0.3 < soft3[0, 0] < 0.6  # softer, same order
    assert soft3.argsort(1).tolist() == soft1.argsort(1).tolist()
    torch.testing.assert_close(distill_loss("kl", z, teacher_probs(z.detach(), 2.0), 2.0).detach(), torch.tensor(0.0), atol=1e-6, rtol=0)
    # with the loss x T^2, a student far from its teacher gets gradients of the same order at T=1 and T=4
    far = torch.randn(8, 10, generator=torch.Generator().manual_seed(5)) * 4
    g1 = grad(lambda z: distill_loss("kl", z, teacher_probs(far, 1.0), 1.0), z).abs().mean()
    g4 = grad(lambda z: distill_loss("kl", z, teacher_probs(far, 4.0), 4.0), z).abs().mean()
    assert 0.25 < (g4 / g1).item() < 4
    with pytest.raises(ConfigError, match="--temperature must be positive"):
        ProgressiveConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="--no-inplace-distill trains on the labels alone; drop one"):
        ProgressiveConfig(temperature=2.0, inplace_distill=False, label_weight=0.0)
