"""Image datasets as uint8 tensors with fixed seeded splits, and fast batched loading.

``load_dataset`` reads a source (:mod:`metaforge.data.raw` says what every reader returns), splits it the same way on
every machine (a seeded hash, not a library RNG whose stream may change between versions) and
measures the train split's per-channel statistics; ``batches`` shuffles, augments and normalises
whole batches with tensor ops, drawing randomness only from the generator it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from metaforge.data import cifar, idx, imagefolder
from metaforge.data.batching import AUGMENTS, batches, num_batches
from metaforge.data.raw import Raw, read_digits
from metaforge.errors import DataError

__all__ = ["AUGMENTS", "DATASETS", "Dataset", "Normalization", "Split", "batches", "load_dataset", "num_batches"]

DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder")
SPLITS: tuple[str, ...] = ("train", "val", "test")
TEST_FRACTION = 0.2  # of datasets without an official test set
VAL_FRACTION = 0.1
VAL_SIZE = 5000  # cap on val for datasets with an official test set (all of it on the real ones)
DEFAULT_IMAGE_SIZE = 32  # imagefolder only: the others keep their native size unless asked


@dataclass(frozen=True)
class Normalization:
    """How raw pixels become network inputs: ``(raw / scale - mean) / std`` per channel.

    Saved with every checkpoint, so a network is always fed the way it was trained.
    """

    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        object.__setattr__(self, "scale", float(self.scale))
        values = (self.scale, *self.mean, *self.std)
        if not all(math.isfinite(v) for v in values) or self.scale <= 0 or min(self.std, default=0) <= 0:
            raise DataError(f"normalisation {self} needs a positive scale and std: rebuild it from the train split")
        if not self.mean or len(self.mean) != len(self.std):
            raise DataError(f"normalisation has {len(self.mean)} means for {len(self.std)} stds: give one of each per channel")

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Raw images (uint8, or float holding raw values), ... x C x H x W -> normalised float32."""
        if images.dim() < 3 or images.shape[-3] != len(self.mean):
            raise DataError(f"images of shape {tuple(images.shape)} do not have the {len(self.mean)} channel(s) "
                            "this normalisation expects: pass N x C x H x W images of the dataset it was measured on")
        gain = torch.tensor([1.0 / (self.scale * s) for s in self.std], dtype=torch.float32, device=images.device)
        shift = torch.tensor([-m / s for m, s in zip(self.mean, self.std, strict=True)], dtype=torch.float32, device=images.device)
        return torch.addcmul(shift.view(-1, 1, 1), images.to(torch.float32), gain.view(-1, 1, 1))

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict`; unknown or missing keys are an error, not ignored."""
        if not isinstance(d, dict) or set(d) != {"scale", "mean", "std"}:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise DataError(f"normalisation record has keys {keys}, expected exactly scale, mean and std: the file is damaged")
        try:
            return cls(scale=float(d["scale"]), mean=tuple(d["mean"]), std=tuple(d["std"]))
        except (TypeError, ValueError) as e:
            raise DataError(f"normalisation record is malformed ({e}): the file is damaged") from None


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare by
class Split:
    """Raw images (uint8 N x C x H x W) and int64 labels; normalisation happens per batch."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"split images must be uint8 N x C x H x W, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise DataError(f"split labels must be int64 with one per image, got {self.labels.dtype} {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: three disjoint splits, their class names, and how to feed them to a net."""

    name: str
    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    norm: Normalization
    augment: str = "none"  # the augmentation training uses: one of AUGMENTS

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTS:
            raise DataError(f"unknown augmentation {self.augment!r}: choose one of {', '.join(AUGMENTS)}")
        shapes = {tuple(s.images.shape[1:]) for s in (self.train, self.val, self.test)}
        if len(shapes) != 1:
            raise DataError(f"{self.name} splits have different image shapes {sorted(shapes)}: build them from one source")

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}: choose one of {', '.join(SPLITS)}")
        return getattr(self, name)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Source:
    read: Callable[[Path | None, int], Raw]
    scale: float  # raw maximum: 16 for digits, 255 for 8-bit images
    augment: str


def _read_digits(data_dir: Path | None, _size: int) -> Raw:
    if data_dir is not None:
        raise DataError("digits ships inside metaforge and reads no --data-dir: drop --data-dir, or pick another dataset")
    return read_digits()


_SOURCES: dict[str, _Source] = {
    "digits": _Source(_read_digits, 16.0, "none"),
    "fashion-mnist": _Source(lambda d, _s: idx.read_fashion_mnist(d), 255.0, "shift"),
    "mnist": _Source(lambda d, _s: idx.read_mnist(d), 255.0, "shift"),
    "cifar10": _Source(lambda d, _s: cifar.read_cifar(d, "cifar10"), 255.0, "shift-flip"),
    "cifar100": _Source(lambda d, _s: cifar.read_cifar(d, "cifar100"), 255.0, "shift-flip"),
    "imagefolder": _Source(imagefolder.read_imagefolder, 255.0, "shift-flip"),
}


def load_dataset(name: str, data_dir: str | Path | None = None, seed: int = 0,
                 image_size: int | None = None, limit: int | None = None) -> Dataset:
    """Read dataset ``name`` and split it by ``seed`` (identically on every machine).

    Without an official test set: stratified test 20%, val 10%, train the rest. With one: val is
    a stratified 5,000 (10% if the pool is smaller than 50,000) of the official train set.
    ``limit`` caps train at a seeded stratified subset, for quick runs; val and test are kept.
    """
    source = _SOURCES.get(name)
    if source is None:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 2):
        raise DataError(f"image size {image_size!r} is invalid: give an integer of at least 2 (pixels per side)")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit {limit!r} is invalid: give a positive number of training images, or none")
    folder = None
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"--data-dir {folder} is not a folder: pass the folder that holds the {name} files")
    raw = source.read(folder, image_size or DEFAULT_IMAGE_SIZE)

    n = len(raw.labels)
    order = _stratified_order(raw.labels, seed, stream=0)
    if raw.test is None:
        n_test, n_val = _round(TEST_FRACTION * n), _round(VAL_FRACTION * n)
        test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
        test_images, test_labels = raw.images[np.sort(test_idx)], raw.labels[np.sort(test_idx)]
    else:
        n_val = min(VAL_SIZE, _round(VAL_FRACTION * n))
        val_idx, train_idx = order[:n_val], order[n_val:]
        test_images, test_labels = raw.test
    if limit is not None and limit < len(train_idx):
        train_idx = train_idx[_stratified_order(raw.labels[train_idx], seed, stream=1)[:limit]]
    if min(len(train_idx), len(val_idx), len(test_labels)) == 0:
        raise DataError(f"{name} has only {n} images, too few to split into train/val/test: use a larger dataset (10 images at least)")

    def make(images: np.ndarray, labels: np.ndarray) -> Split:
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        return Split(_resize(tensor, image_size) if image_size else tensor, torch.from_numpy(labels.astype(np.int64)))

    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    train = make(raw.images[train_idx], raw.labels[train_idx])
    return Dataset(name=name, classes=raw.classes, train=train, val=make(raw.images[val_idx], raw.labels[val_idx]),
                   test=make(test_images, test_labels), norm=_measure(train.images, source.scale), augment=source.augment)


def _round(x: float) -> int:
    """Round half up (Python's round() goes to even, which would make sizes surprising)."""
    return math.floor(x + 0.5)


_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (numpy wraps array arithmetic modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _random_keys(n: int, seed: int, stream: int) -> np.ndarray:
    """n pseudo-random uint64 keys fixed by (seed, stream): plain arithmetic, same on every platform."""
    base = _mix64(np.array([(seed * _GOLDEN + stream) & _MASK64], dtype=np.uint64))
    return _mix64(np.arange(n, dtype=np.uint64) * np.uint64(_GOLDEN) + base)


def _stratified_order(labels: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """A seeded permutation of indices whose every prefix holds each class in its overall share (±1).

    Each sample gets the position (rank + 0.5) / class size of a random rank within its class;
    sorting by position interleaves the classes evenly, so taking the first k is stratified
    sampling for any k.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    by_class = np.lexsort((_random_keys(n, seed, 2 * stream), labels))
    counts = np.bincount(labels)
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = np.arange(n) - (np.cumsum(counts) - counts)[labels[by_class]]
    position = (rank + 0.5) / counts[labels]
    return np.lexsort((_random_keys(n, seed, 2 * stream + 1), position))


def _resize(images: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 images, in chunks to bound the float copy's memory."""
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    for i in range(0, n, chunk):
        x = F.interpolate(images[i:i + chunk].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i:i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _measure(images: torch.Tensor, scale: float, chunk: int = 2048) -> Normalization:
    """Per-channel mean/std of images / scale, from exact integer sums (order-independent)."""
    c = images.shape[1]
    count = max(1, images.numel() // c)
    total = torch.zeros(c, dtype=torch.int64)
    squares = torch.zeros(c, dtype=torch.int64)
    for part in images.split(chunk):
        x = part.to(torch.int64)
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
    mean = total.double() / count
    std = (squares.double() / count - mean * mean).clamp_min(0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std) * scale)  # a constant channel: just centre it
    return Normalization(scale, tuple((mean / scale).tolist()), tuple((std / scale).tolist()))
