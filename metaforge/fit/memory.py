"""Memory of a config: weights at the target precision + peak activations for the batch + the
runtime's own overhead.

Two sources: ``analytic`` adds the three with the profile's ``device.runtime_overhead_mb``;
``table`` uses the linear model ``offset + a * (weights + activations)`` fitted by
``metaforge profile measure`` to peak memory measured in the real runtime (ONNX Runtime
pre-packs weights and keeps an arena, so a is not 1 there). ``measured`` numbers come
from :func:`metaforge.fit.latency.measure_one` (peak resident memory of the runtime process
over session creation and inference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metaforge.fit import shapes
from metaforge.fit.shapes import Layer
from metaforge.profiles import BYTES_PER, Profile

if TYPE_CHECKING:
    from metaforge.fit.table import LatencyTable

MB = 2**20


def memory_terms(ls: list[Layer], profile: Profile) -> tuple[float, float]:
    """(weights MB, peak activations MB for the profile's batch), both at the target precision."""
    nbytes = BYTES_PER[profile.precision]
    weights = shapes.params(ls) * nbytes / MB
    acts = shapes.peak_activation_elems(ls) * profile.batch * nbytes / MB
    return weights, acts


def predict_memory(ls: list[Layer], profile: Profile, table: LatencyTable | None = None) -> tuple[float, str]:
    """Predicted peak memory in MB and its source ("table" or "analytic")."""
    weights, acts = memory_terms(ls, profile)
    if table is not None and len(table.memory) == 2:
        offset, slope = table.memory
        return offset + slope * (weights + acts), "table"
    return profile.device.runtime_overhead_mb + weights + acts, "analytic"
