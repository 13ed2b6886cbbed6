"""A trained manifold: the INR plus what a user needs to turn it into plain networks."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from metaforge.data import Normalization
from metaforge.errors import CheckpointError, ConfigError
from metaforge.evaluate import PRECISIONS, recalibrate_batchnorm
from metaforge.fold import fold_batchnorm
from metaforge.inr import Jitter, WeightINR
from metaforge.nets import ResNet
from metaforge.space import ArchConfig, ArchSpace

if TYPE_CHECKING:
    from metaforge.accuracy_model import AccuracyRecord
    from metaforge.data import Dataset

DEFAULT_SAMPLES = 4

QUICK_CALIBRATION = 256  # images for materialisations whose values hardly matter (a latency measurement, a progress log)


@dataclass
class ManifoldInfo:
    """Metadata that travels with a manifold (stored as JSON in the checkpoint)."""

    dataset: str
    classes: tuple[str, ...]
    normalization: Normalization
    bn_mode: str  # "fold" (BN folded into the generated convs) or "recalibrate" (per-size BN statistics)
    seen_widths: tuple[tuple[int, ...], ...]  # per stage, the widths sampled in training
    seen_depths: tuple[tuple[int, ...], ...]
    samples: int = DEFAULT_SAMPLES  # K averaged for sizes narrower than every seen width (else 1)
    train_config: dict = field(default_factory=dict)
    accuracy: list[dict] = field(default_factory=list)  # rows: config, params, mflops, top1, seen
    base_accuracy: float | None = None


def as_config(config: ArchConfig | str) -> ArchConfig:
    return config if isinstance(config, ArchConfig) else ArchConfig.parse(config)


class Manifold:
    """One checkpoint, any width and depth: ``materialize(config)`` returns a plain network."""

    def __init__(self, inr: WeightINR, info: ManifoldInfo, calibration: torch.Tensor | None = None,
                 source: Path | None = None, accuracy_record: AccuracyRecord | None = None,
                 recalibration: str = "auto") -> None:
        self.inr = inr
        self.info = info
        self.calibration = calibration  # raw (uint8) training images for "recalibrate" BN statistics
        self.source = source  # the file it was loaded from (fit's accuracy cache is kept beside it)
        self.accuracy_record = accuracy_record  # val top-1 measured at training and its model's hyperparameters (fit ranks by it)
        # precision of the BN recalibration pass: "auto" (bf16 where the CPU has it natively, ~2x faster),
        # "bf16", or "fp32" (the exact statistics of every release before issue 14)
        if recalibration not in PRECISIONS:
            raise ConfigError(f"recalibration must be one of {', '.join(PRECISIONS)}, got {recalibration!r}")
        self.recalibration = recalibration
        self._nets: OrderedDict[ArchConfig, nn.Module] = OrderedDict()

    def dataset(self) -> Dataset:
        """The dataset the manifold was trained on, with the same seeded splits (the one place that re-derives it)."""
        from metaforge.data import load_dataset

        tc = self.info.train_config
        return load_dataset(self.info.dataset, tc.get("data_dir"), seed=int(tc.get("seed", 0)))

    @property
    def space(self) -> ArchSpace:
        return self.inr.space

    @property
    def device(self) -> torch.device:
        return self.inr.freqs.device

    def is_seen(self, config: ArchConfig) -> bool:
        """True if every stage's width and depth were sampled in training."""
        return all(
            w in ws and d in ds
            for w, d, ws, ds in zip(config.widths, config.depths, self.info.seen_widths, self.info.seen_depths)
        )

    def training_net(self, config: ArchConfig) -> nn.Module:
        """The module ``functional_call`` runs with generated tensors in place of its own (cached per config)."""
        net = self._nets.get(config)
        if net is None:
            norm = "batch-stateless" if self.inr.bn else "none"
            net = ResNet(config, self.space.in_channels, self.space.num_classes, norm).to(self.device)
            self._nets[config] = net
            if len(self._nets) > 64:
                self._nets.popitem(last=False)
        return net

    def default_samples(self, config: ArchConfig) -> int:
        """K for ``config``: cell centres within the seen widths, a K-sample box filter below them.

        Measured on digits and Fashion-MNIST (docs/METHOD.md): averaging gains 10-17 points below
        the narrowest seen width and costs 0-2 points at and between seen widths.
        """
        below = any(w < min(seen) for w, seen in zip(config.widths, self.info.seen_widths))
        return self.info.samples if below else 1

    def generate(self, config: ArchConfig, samples: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
        """Tensors of ``config`` averaged over K stratified coordinate samples (K=1: cell centres)."""
        if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
            raise ConfigError(f"K (--samples) must be an integer of at least 1, got {samples!r}; leave it out for the manifold's default")
        k = samples or self.default_samples(config)
        if k <= 1:
            return self.inr.generate(config)
        gen = torch.Generator().manual_seed(seed)
        total: dict[str, torch.Tensor] = {}
        for i in range(k):
            for name, t in self.inr.generate(config, Jitter(gen, i, k)).items():
                total[name] = total[name] + t if name in total else t
        return {name: t / k for name, t in total.items()}

    @torch.no_grad()
    def materialize(self, config: ArchConfig | str, samples: int | None = None, calibration: int | None = None) -> ResNet:
        """A plain ``nn.Module`` (conv + bias, no BatchNorm) of the given size, in eval mode.

        ``calibration``: recalibrate BatchNorm on only the first N stored images (None: all of them), for
        networks whose values matter little (a latency measurement, a progress log): the pass is most
        of a materialisation's time and grows with the images, and fewer of them give noisier statistics.
        """
        config = self.space.check(as_config(config))
        was_training = self.inr.training
        self.inr.eval()
        try:
            params = self.generate(config, samples)
        finally:
            self.inr.train(was_training)
        sp = self.space
        if not self.inr.bn:
            net = ResNet(config, sp.in_channels, sp.num_classes, "none").to(self.device)
            net.load_state_dict(params)
            return _finite(net.eval(), config)
        net = ResNet(config, sp.in_channels, sp.num_classes, "batch").to(self.device)
        net.load_state_dict(params, strict=False)
        if self.calibration is None:
            raise CheckpointError("this manifold recalibrates BatchNorm but carries no calibration images; retrain it")
        images = self.calibration if calibration is None else self.calibration[:calibration]
        recalibrate_batchnorm(net, self.info.normalization.apply(images).to(self.device), precision=self.recalibration)
        return _finite(fold_batchnorm(net), config)


def _finite(net: ResNet, config: ArchConfig) -> ResNet:
    """Refuse a network with NaN or inf weights: finite but extreme INR values can overflow in generation."""
    for name, t in net.state_dict().items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"the manifold generated non-finite weights for '{config}' (first in '{name}'): "
                                  "it is damaged or its training diverged; retrain it")
    return net
