"""How a smaller size learns its teacher's predictions: KL, or AlphaNet's adaptive alpha-divergence.

Why a choice: KL(teacher || student), inplace distillation's usual loss, is mild on a student that
spreads probability over classes the teacher rules out (it over-estimates the teacher's
uncertainty). AlphaNet (Wang et al., ICML 2021) trains each image on the larger of two
alpha-divergences, one with alpha > 0 (KL at alpha = 1: it punishes under-estimating the teacher's
uncertainty) and one with alpha < 0 (it punishes over-estimating it), with the importance weights
of the gradient clipped for stability; the paper reports better sub-networks of weight-sharing
supernets at no extra passes. Here alpha = -1 and +1 with the weights clipped at 5, the paper's
setting as we read it. The temperature is Hinton's knowledge distillation.

Measured on the fidelity benchmark (docs/BENCHMARKS.md, round 16), each on two seeds at the same
compute against KL at temperature 1: the alpha-divergence lost (mean gap -0.10, -0.04), and so did
temperature 2 (-0.34, -0.02). The teacher is sure of most training images (its top class above 0.99
on 65% of them), so both losses mostly reweigh a near one-hot target; KL at 1 stays the default.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ALPHA_NEG, ALPHA_POS = -1.0, 1.0
IW_CLIP = 5.0


def kl(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """KL(soft || softmax(logits)), averaged over the batch."""
    return nn.functional.kl_div(logits.float().log_softmax(1), soft, reduction="batchmean")


def alpha_divergence(logits: torch.Tensor, soft: torch.Tensor, alpha: float, clip: float = IW_CLIP) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the value of D_alpha(soft || q) and a surrogate whose gradient is D_alpha's with clipped weights.

    D_alpha(p || q) = (sum_i p_i^a q_i^(1-a) - 1) / (a (a - 1)); its gradient in the student's logits is
    -(1/a) q_j (w_j - sum_i q_i w_i) with importance weights w = (p/q)^a, which is the gradient of
    -(1/a) sum_i sg(w_i) q_i. Clipping w at ``clip`` bounds the step where p/q is extreme.
    """
    log_q = logits.float().log_softmax(1)
    q = log_q.exp()
    log_ratio = soft.clamp_min(1e-12).log() - log_q
    log_w = alpha * log_ratio
    w = log_w.clamp(max=math.log(clip)).exp()
    surrogate = -(w.detach() * q).sum(1) / alpha
    if alpha == 1.0:  # the limit: KL(p || q)
        value = (soft * log_ratio).sum(1)
    else:
        value = ((q * log_w.exp()).sum(1) - 1) / (alpha * (alpha - 1))
    return value.detach(), surrogate


def adaptive_alpha(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """AlphaNet's loss: per image the larger of D_-1 and D_+1; its value is that divergence, its gradient the clipped one."""
    neg_value, neg_sur = alpha_divergence(logits, soft, ALPHA_NEG)
    pos_value, pos_sur = alpha_divergence(logits, soft, ALPHA_POS)
    take_neg = neg_value > pos_value
    value = torch.where(take_neg, neg_value, pos_value)
    surrogate = torch.where(take_neg, neg_sur, pos_sur)
    return (value + surrogate - surrogate.detach()).mean()


def teacher_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The teacher's probabilities at ``temperature`` (above 1: softer, so the student sees how alike the classes are)."""
    return (logits.float() / temperature).softmax(1)


def distill_loss(kind: str, logits: torch.Tensor, soft: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The student's loss (one of DISTILL_LOSSES) against ``soft``, the teacher's probabilities at ``temperature``.

    The student's logits are divided by the same temperature, and the loss multiplied by its square
    so that the gradient keeps its scale whatever the temperature (Hinton et al., 2015).
    """
    loss = {"kl": kl, "alpha": adaptive_alpha}[kind]  # kind is checked with the config (ProgressiveConfig.distill_loss)
    return loss(logits.float() / temperature, soft) * temperature**2
