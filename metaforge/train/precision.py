"""Mixed precision for training steps: autocast on CUDA, and loss scaling for fp16.

bf16 and fp16 autocast speed up the convolutions on GPUs with tensor cores; on a CPU they are
slower or unsupported for many ops, so asking for them there is an error rather than a silent
fall-back (the run would not be what was asked for). Weights, optimiser state, the EMA and
every checkpoint stay fp32; only the forward pass runs in the lower precision.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from metaforge.errors import ConfigError
from metaforge.train.config import PRECISIONS

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """How a training step runs its forward pass and turns the loss into gradients."""

    def __init__(self, name: str, device: torch.device, cuda_only: bool = True) -> None:
        if name not in PRECISIONS:
            raise ConfigError(f"unknown precision {name!r}; choose one of: {', '.join(PRECISIONS)}")
        if name != "fp32" and cuda_only and device.type != "cuda":
            raise ConfigError(f"--precision {name} needs a CUDA device (training is on {device}); "
                              "on a CPU train with --precision fp32")
        self.name, self.device_type = name, device.type
        self.dtype = _DTYPES.get(name)
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> AbstractContextManager:
        """The context of the forward pass (nothing for fp32)."""
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, *opts: torch.optim.Optimizer) -> None:
        """True gradients from here on (call after the all-reduce, before clipping)."""
        if self.scaler is not None:
            for opt in opts:
                self.scaler.unscale_(opt)

    def step(self, *opts: torch.optim.Optimizer) -> None:
        """The optimisers' step; fp16 skips it when a gradient overflowed and adapts the scale once."""
        for opt in opts:
            if self.scaler is None:
                opt.step()
            else:
                self.scaler.step(opt)
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
