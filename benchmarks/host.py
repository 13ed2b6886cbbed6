"""The machine a benchmark ran on, recorded in its JSON.

Why: training is bitwise reproducible on one machine but not across machines (most likely the
CPU type: oneDNN picks other kernels), so a base network retrained elsewhere is another network
(seed 0's: 91.09% on the machine of rounds 8-10, 90.39% on the AMD EPYC of round 11), and the
CPU-seconds of two machines do not compare. A result that names its CPU says which runs it may be
paired with.
"""

from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict:
    """CPU model, core count, torch version and the CPU kernels torch dispatches to."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "omp_threads": torch.get_num_threads()}
