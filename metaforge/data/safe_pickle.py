"""A pickle reader that can only rebuild numpy arrays: dataset pickles never need more."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from metaforge.errors import DataError


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 pickles (protocol < 3) use to store bytes; only the latin-1 codec is allowed."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1") or not isinstance(text, str):
        raise DataError(f"pickle asks for the {encoding!r} codec, which data files never need: the file is not a dataset")
    return text.encode("latin1")


@functools.cache
def _allowed() -> dict[tuple[str, str], Callable[..., Any]]:
    """The only callables a dataset pickle may name: numpy array reconstruction, nothing that runs code."""
    try:  # numpy 2 moved numpy.core to numpy._core; old pickles name the former, new ones the latter
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    table: dict[tuple[str, str], Callable[..., Any]] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                                        ("_codecs", "encode"): _latin1_encode}
    for mod in ("numpy.core", "numpy._core"):
        table[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]  # protocol 5
    return table


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy reconstruction names, so a hostile file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        fn = _allowed().get((module, name))
        if fn is None:
            raise DataError(f"refusing to load a pickle that calls {module}.{name}: "
                            "a dataset file holds only arrays; use the original file")
        return fn
