"""Keep third-party converters' log noise off the user's terminal (TensorFlow, absl, torchao, XNNPACK).

litert-torch loads TensorFlow's C++ runtime, absl logging and torchao, which write INFO and
WARNING lines straight to file descriptor 2, plus Python warnings and log records. None of them
is actionable for a metaforge user and they break the one-line error contract, so ``quiet()``
sends fd 2 to a discarded temp file for the duration and ignores warnings and records below
ERROR. Failures still surface as exceptions, which the CLI turns into one line.
Set ``METAFORGE_DEBUG=1`` to see everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    if os.environ.get("METAFORGE_DEBUG"):
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow's C++ runtime first logs
    previous = logging.root.manager.disable
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logging.disable(previous)
