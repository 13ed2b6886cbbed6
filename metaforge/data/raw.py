"""What every source reader returns, and the checked reading that every reader shares.

Readers (:mod:`metaforge.data.idx`, :mod:`metaforge.data.cifar`, :mod:`metaforge.data.imagefolder`)
turn an on-disk format into uint8 arrays (images N x C x H x W, labels int64 N), execute no
foreign code, and raise :class:`DataError` with a one-line fix for anything missing or malformed;
splitting, resizing and normalisation happen in :mod:`metaforge.data`, the same way for every source.
"""

from __future__ import annotations

import gzip
import importlib.resources
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metaforge.data.safe_pickle import SafeUnpickler
from metaforge.errors import DataError

DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class Raw:
    """A dataset as read from disk, before splitting.

    ``images``/``labels`` are the pool that train and val (and test, when ``test`` is None) are
    drawn from; ``test`` is the official test set where the dataset has one.
    """

    classes: tuple[str, ...]
    images: np.ndarray
    labels: np.ndarray
    test: tuple[np.ndarray, np.ndarray] | None


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name says)."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path} ({first_line(e)}): re-download it or check its permissions") from None


def check_labels(labels: Any, num_classes: int, where: Path | str) -> np.ndarray:
    """Labels as int64, refusing values outside [0, num_classes) so a bad file fails here, not mid-training."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"{where} has labels that are not a list of integers: re-download it")
    arr = arr.astype(np.int64)
    if len(arr) and (arr.min() < 0 or arr.max() >= num_classes):
        raise DataError(f"{where} has labels outside 0..{num_classes - 1}: re-download it")
    return arr


def load_pickle(path: Path, encoding: str) -> Any:
    """Unpickle ``path`` (gzipped or not) with :class:`SafeUnpickler`; any failure is a DataError."""
    data = read_bytes(path)
    try:
        return SafeUnpickler(io.BytesIO(data), encoding=encoding).load()
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    except Exception as e:  # a malformed pickle can fail in many ways; all mean "bad file"
        raise DataError(f"{path} is not a readable dataset pickle ({first_line(e)}): re-download it") from None


def first_line(e: BaseException) -> str:
    """An exception's first line (or its type), so an error message stays one line."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def read_digits() -> Raw:
    """The 1,797 8x8 digits shipped in the package (values 0..16); no official test split."""
    ref = importlib.resources.files("metaforge").joinpath("assets/digits.npz")
    try:
        with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"the digits file shipped with metaforge is unreadable ({first_line(e)}): reinstall metaforge") from None
    if images.shape[1:] != (1, 8, 8) or images.dtype != np.uint8 or len(images) != len(labels):
        raise DataError("the digits file shipped with metaforge is malformed: reinstall metaforge")
    return Raw(DIGIT_CLASSES, images, check_labels(labels, 10, "digits.npz"), None)
