"""On-device measurement: a self-contained bundle to copy to a device, and its results read back.

:mod:`.build` writes the bundle (models through the export pipeline, held-out samples with PyTorch
reference outputs, a manifest, and :mod:`.runner` copied as ``run.py``); the runner times and checks
the models with nothing but the device's Python, numpy and runtime; :mod:`.ingest` turns its
``results.json`` into a latency table for ``metaforge fit --table``.
"""

from __future__ import annotations

from metaforge.errors import MetaforgeError

MANIFEST_SCHEMA = "metaforge.bundle/1"
RESULTS_SCHEMA = "metaforge.bundle-results/1"  # written by runner.py (which cannot import this)


class BundleError(MetaforgeError):
    """A bundle or its results cannot be built or read."""

    exit_code = 2
