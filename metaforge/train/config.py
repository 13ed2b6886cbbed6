"""Training configuration: one frozen dataclass, saved with every run and every manifold."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from metaforge.errors import ConfigError
from metaforge.inr_config import INRConfig
from metaforge.space import preset_shape

BN_MODES = ("recalibrate", "fold")
PRECISIONS = ("fp32", "bf16", "fp16")  # of the forward pass; here, not in precision.py, which imports torch
RECIPES = ("progressive", "single")  # the manifold phase: sandwich from a trained base, or one size per step
OPTIMIZERS = ("sgd", "adamw")
WIDTH_SAMPLING = ("continuous", "seen")
BOTTOM_DEPTHS = ("min", "shared", "alternate")
DISTILL_LOSSES = ("kl", "alpha")  # how the smaller sizes learn the teacher (metaforge/train/divergence.py)
TEACHERS = ("full", "base")  # whose predictions the progressive phase's smaller sizes learn
CHANNEL_ORDERS = ("smooth", "importance", "usage")  # of the base's channels before the INR takes them (metaforge/permute.py)
# What `metaforge train` picks when --width-map / --channel-order are not given: the progressive recipe
# measured best with OFA's nested map (issue 15, round 4) over channels sorted by the weights that read them
# (round 8, docs/BENCHMARKS.md)
RECIPE_WIDTH_MAP = {"progressive": "nested", "single": "resample"}
RECIPE_CHANNEL_ORDER = {"progressive": "usage", "single": "smooth"}
# The AdamW rate of the INR's MLP (its size corrections): 2.5x faster in the progressive phase, where
# the grids hold the shared weights and the MLP only corrects each size (issue 15, round 10: better in five
# matched runs, three seeds and a second stream of two; 1e-2 lost 0.4 points on average)
RECIPE_MLP_LR = {"progressive": 5e-3, "single": 2e-3}


@dataclass(frozen=True)
class ProgressiveConfig:
    """The sandwich phase of the ``progressive`` recipe (docs/METHOD.md, "The progressive recipe").

    Why: a trained full size that teaches the others keeps its accuracy and lifts every size,
    where training all sizes jointly from the start shares one network's budget among them all
    (the fidelity probes of issue 15). Every step trains the full size on the labels, then the
    smallest size and ``random_sizes`` random ones on the full size's detached predictions, and
    takes one step on the summed gradients (US-Nets' sandwich rule with inplace distillation).
    """

    lr: float = 0.03  # SGD on the weight grids, re-parameterised so a grid step is a step on the full-size weight; 0.02 until round 12
    momentum: float = 0.9
    weight_decay: float = 5e-4  # conv and linear weights only, as in base training
    optimizer: str = "sgd"  # or "adamw" (the grids at TrainConfig.lr, as the single recipe)
    random_sizes: int = 3
    shared_fraction: int = 2  # how many of the random sizes scale every stage by one width fraction (the rest: a width per stage)
    shared_depth: bool = True  # the shared-fraction sizes also share one depth rank across stages (d=2,2,2 and alike)
    shared_step: float = 0.125  # the shared fraction drawn from the grid 1, 1-step, ... (0.125: 25, 37.5, ..., 100%); 0: continuous
    shared_tilt: float = 0.0  # on the grid, fraction f drawn with probability in proportion to f ** tilt (0: uniform)
    shared_cycle: bool = False  # on the grid, the uniform scalings go through every (fraction, depth rank) pair once per cycle, each cycle in a seeded order (stratified), instead of independent draws (measured: no gain, round 15)
    smallest: bool = True  # the bottom of the sandwich: every stage at its minimum width and depth
    bottom_depth: str = "alternate"  # the bottom's depth: "min", "shared" (one depth rank drawn per step for every stage), or "alternate" (min on even steps, shared on odd)
    inplace_distill: bool = True  # smaller sizes learn the full size's predictions (False: the labels)
    teacher: str = "full"  # with inplace_distill, whose predictions: the full size's as it trains, or the frozen base network's (one more forward pass per step)
    widths: str = "continuous"  # every integer width of the space but the held-out ones; or "seen" (seen_width_fracs)
    holdout_width_fracs: tuple[float, ...] = (0.3125, 0.5625, 0.8125)  # never sampled: these widths stay unseen, off the table's 37.5/62.5/87.5%
    train_mlp: bool = True  # the MLP's size corrections train too (False: they stay at zero, only the grids train)
    full_weight: float = 4.0  # the full size's label loss, times this, in the step's sum (the others' weight is 1); 2 until round 10, 3 until round 12
    full_weight_end: float | None = None  # the full weight moves linearly from full_weight to this over the phase, so the smaller sizes weigh more at the end (None: constant; 4 to 2 measured: lost, round 16)
    full_every: int = 1  # the full size learns the labels every n-th step; between, it only teaches (a forward pass without gradient)
    one_size: bool = False  # the ablation of the sandwich: each step trains one of its sizes in turn (the full size still teaches)
    redraw_full: bool = False  # a random size that comes out as the full size is drawn again (measured: no gain, round 8)
    ema: float = 0.0  # EMA of the INR (0: the stored manifold is the trained one)
    sub_batches: int = 1  # the smaller sizes each train on one of this many parts of the batch, in turn (the full size on all of it)
    distill_loss: str = "kl"  # with inplace_distill: KL to the teacher, or "alpha", AlphaNet's adaptive alpha-divergence (metaforge/train/divergence.py; measured: lost, round 16)
    temperature: float = 1.0  # with inplace_distill: of the teacher's and the students' softmax (the loss x its square, Hinton's KD); 1: US-Nets (2 measured: lost, round 16)
    label_weight: float = 0.5  # with inplace_distill, the smaller sizes' loss adds this x cross-entropy on the labels to the distillation (0, distillation alone as US-Nets, until round 14)

    def full_weight_at(self, t: int, total: int) -> float:
        """The full size's loss weight at step ``t`` of ``total``."""
        if self.full_weight_end is None:
            return self.full_weight
        return self.full_weight + (self.full_weight_end - self.full_weight) * t / max(1, total - 1)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimiser {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.widths not in WIDTH_SAMPLING:
            raise ConfigError(f"unknown width sampling {self.widths!r}; choose one of: {', '.join(WIDTH_SAMPLING)}")
        if not self.lr > 0:
            raise ConfigError(f"--phase-lr must be positive, got {self.lr}")
        if self.random_sizes < 0:
            raise ConfigError(f"--random-sizes must be 0 or more, got {self.random_sizes}")
        if not 0 <= self.shared_fraction <= self.random_sizes:
            raise ConfigError(f"--shared-fraction must lie between 0 and --random-sizes ({self.random_sizes}), got {self.shared_fraction}")
        if not self.full_weight > 0:
            raise ConfigError(f"--full-weight must be positive, got {self.full_weight}")
        if self.full_weight_end is not None and not self.full_weight_end > 0:
            raise ConfigError(f"--full-weight-end must be positive, got {self.full_weight_end}")
        if self.full_every < 1:
            raise ConfigError(f"--full-every must be 1 or more, got {self.full_every}")
        if self.teacher not in TEACHERS:
            raise ConfigError(f"unknown teacher {self.teacher!r}; choose one of: {', '.join(TEACHERS)}")
        if self.teacher != "full" and not self.inplace_distill:
            raise ConfigError(f"--teacher {self.teacher} teaches through inplace distillation; drop --no-inplace-distill or the teacher")
        if self.distill_loss not in DISTILL_LOSSES:
            raise ConfigError(f"unknown distillation loss {self.distill_loss!r}; choose one of: {', '.join(DISTILL_LOSSES)}")
        if self.distill_loss != "kl" and not self.inplace_distill:
            raise ConfigError(f"--distill-loss {self.distill_loss} is the loss of inplace distillation; drop --no-inplace-distill or the loss")
        if not self.temperature > 0:
            raise ConfigError(f"--temperature must be positive, got {self.temperature}")
        if self.temperature != 1.0 and not self.inplace_distill:
            raise ConfigError(f"--temperature {self.temperature} softens the teacher's predictions, but --no-inplace-distill trains on the labels alone; drop one")
        if not self.label_weight >= 0:
            raise ConfigError(f"--label-weight must be 0 or more, got {self.label_weight}")
        if self.label_weight and not self.inplace_distill:
            raise ConfigError(f"--label-weight {self.label_weight} adds the labels to inplace distillation, but --no-inplace-distill "
                              "trains on the labels alone: give --label-weight 0 (label_weight=0.0) with it")
        if self.bottom_depth not in BOTTOM_DEPTHS:
            raise ConfigError(f"unknown bottom depth {self.bottom_depth!r}; choose one of: {', '.join(BOTTOM_DEPTHS)}")
        if self.shared_tilt < 0:
            raise ConfigError(f"--shared-tilt must be 0 or more, got {self.shared_tilt}")
        if not 0.0 <= self.shared_step < 1.0:
            raise ConfigError(f"--shared-step must lie in [0, 1), got {self.shared_step}")
        if self.shared_cycle and (self.shared_step <= 0 or self.shared_tilt):
            raise ConfigError("--shared-cycle goes through the grid of width multipliers evenly: it needs --shared-step > 0 "
                              f"(got {self.shared_step}) and no --shared-tilt (got {self.shared_tilt})")
        if not all(0 < f < 1 for f in self.holdout_width_fracs):
            raise ConfigError(f"held-out width fractions must lie in (0, 1), got {self.holdout_width_fracs}")
        if self.sub_batches < 1:
            raise ConfigError(f"--sub-batches must be 1 or more, got {self.sub_batches}")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"the progressive EMA must lie in [0, 1), got {self.ema}")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    preset: str = "resnet20"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    limit: int | None = None  # cap on training samples, for quick runs
    # base network (skipped when base_path is given)
    base_path: str | None = None
    base_epochs: int = 30
    base_lr: float = 0.1
    # manifold
    recipe: str = "single"  # the dataclass keeps the earlier recipe and its map/order defaults; `metaforge train` picks
    # "progressive" with the nested map over usage-ordered channels (RECIPE_*), the one that met issue 15's bar
    progressive: ProgressiveConfig = field(default_factory=ProgressiveConfig)
    bn_mode: str = "recalibrate"
    permute: bool = True
    channel_order: str = "smooth"  # with permute: "smooth" for the resampling width map, "importance" for the nested one
    recon_steps: int | None = None  # INR regression steps; default 0 with a weight grid (exact), else 2000
    recon_lr: float = 3e-3
    epochs: int = 60
    # AdamW rates: the weight grids (the network's own weights) fast, the MLP that shapes every size
    # slow; one rate of 2e-3 for both until the fidelity runs (docs/METHOD.md, "INR learning rates")
    lr: float = 3e-2
    mlp_lr: float | None = 2e-3  # everything but the weight grids (None: lr); `metaforge train` picks RECIPE_MLP_LR
    weight_decay: float = 0.0
    norm_reg: float = 1e-4  # x sum of unsquared weight norms (NeuMeta)
    recon_weight: float = 1.0  # reconstruction to the base weights, on full-size steps
    full_every: int = 4  # every n-th step trains the full size
    sandwich: bool = False  # and, half-way between, the smallest seen size
    distill: float = 0.0  # weight of KL to the base network's predictions (1 - distill on cross-entropy)
    incremental: bool = True  # stage-wise, shallow to deep
    incremental_frac: float = 0.4  # share of manifold epochs spent before the whole space varies
    seen_width_fracs: tuple[float, ...] = (0.5, 0.75, 1.0)
    min_width_frac: float = 0.25
    min_depth: int = 1
    ema: float = 0.995
    grad_clip: float = 1.0  # clip by value, as NeuMeta
    samples: int = 4  # K at materialisation (stratified); measured on digits, see docs/METHOD.md
    calibration_size: int = 4096  # BN statistics of each materialised size: 4096 beat 256 by 0.13 pt mean val top-1 on 10 manifolds (docs/METHOD.md)
    inr: INRConfig = field(default_factory=INRConfig)
    save_every: int = 200  # steps between resumable training checkpoints
    precision: str = "fp32"  # autocast of the forward pass on CUDA: fp32, bf16 or fp16
    sync_bn: bool = True  # distributed: BatchNorm statistics of the global batch, not of each rank's part

    def __post_init__(self) -> None:
        preset_shape(self.preset)  # an unknown preset is refused here, before torch is imported
        if self.bn_mode not in BN_MODES:
            raise ConfigError(f"unknown BN mode {self.bn_mode!r}; choose one of: {', '.join(BN_MODES)}")
        if self.channel_order not in CHANNEL_ORDERS:
            raise ConfigError(f"unknown channel order {self.channel_order!r}; choose one of: {', '.join(CHANNEL_ORDERS)}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; choose one of: {', '.join(RECIPES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        for name in ("batch_size", "epochs", "samples", "full_every", "calibration_size", "save_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("base_epochs", "recon_steps"):
            if (getattr(self, name) or 0) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        for name in ("lr", "mlp_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:  # also refuses NaN
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if not 0.0 <= self.distill <= 1.0:
            raise ConfigError(f"--distill must lie in [0, 1], got {self.distill}")
        if not self.seen_width_fracs or not all(0 < f <= 1 for f in self.seen_width_fracs):
            raise ConfigError(f"seen width fractions must lie in (0, 1], got {self.seen_width_fracs}")

    @property
    def recon_steps_resolved(self) -> int:
        if self.recon_steps is not None:
            return self.recon_steps
        return 0 if self.inr.weight_grid else 2000

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        d = dict(d)
        d.setdefault("recipe", "single")  # written before the progressive recipe existed
        prog = dict(d.get("progressive", {}))
        prog.setdefault("label_weight", 0.0)  # written before the label weight existed: trained on distillation alone
        if "holdout_width_fracs" in prog:
            prog["holdout_width_fracs"] = tuple(prog["holdout_width_fracs"])
        d["progressive"] = ProgressiveConfig(**prog)
        d["inr"] = INRConfig(**d.get("inr", {}))
        d["seen_width_fracs"] = tuple(d.get("seen_width_fracs", cls.seen_width_fracs))
        return cls(**d)
