"""CIFAR-10/100 in their "python version": pickled batches, read with the restricted unpickler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from metaforge.data.raw import Raw, check_labels, load_pickle
from metaforge.errors import DataError


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
    labels = check_labels(d[label_key], num_classes, path)
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
