"""Plain networks on disk: weights (safetensors) + architecture JSON, and a torch.export program.

A saved model folder holds ``model.safetensors`` (weights, with the architecture in its header),
``model.json`` (architecture, config, normalisation, classes) and ``model.pt2``, a
``torch.export`` program that plain PyTorch loads without metaforge:
``torch.export.load("model.pt2").module()``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from metaforge.errors import CheckpointError
from metaforge.formats import MANIFOLD_FORMAT, MODEL_FORMAT
from metaforge.io import atomic_folder, atomic_write_safetensors, atomic_write_text
from metaforge.nets import ResNet

def save_model(model: ResNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model``'s weights and architecture to one safetensors file."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": MODEL_FORMAT, "arch": json.dumps(model.describe()), "extra": json.dumps(extra or {})}
    return atomic_write_safetensors(path, tensors, meta)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ResNet, dict]:
    """Rebuild a network saved by :func:`save_model`; returns (model in eval mode, extra metadata)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable model file (corrupt or truncated: {e})") from None
    if meta.get("format") == MANIFOLD_FORMAT:
        raise CheckpointError(f"{path} is a metaforge manifold, not a model: give a model file (e.g. a run folder's base.safetensors)")
    if meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path} is not a metaforge model (no '{MODEL_FORMAT}' header): give a model file written by metaforge")
    try:
        model = ResNet.from_description(json.loads(meta["arch"]))
        model.load_state_dict(tensors)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} does not match its architecture header ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), json.loads(meta.get("extra", "{}"))


def save_model_folder(model: ResNet, folder: str | Path, extra: dict, example: torch.Tensor) -> Path:
    """Write the three files of a model folder (see module docstring)."""
    folder = Path(folder)
    model = model.eval().cpu()
    batch = torch.export.Dim("batch", min=1, max=65536)
    example = example.cpu().expand(2, *example.shape[1:]).contiguous()  # batch 2: not specialised to 1
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    with atomic_folder(folder) as tmp:  # the three files appear together or not at all
        save_model(model, tmp / "model.safetensors", extra)
        atomic_write_text(tmp / "model.json", json.dumps({**model.describe(), **extra}, indent=2) + "\n")
        _save_program(program, tmp / "model.pt2")
    return folder


def _save_program(program: torch.export.ExportedProgram, path: Path) -> None:
    # Through a file object: given the temp file's name (not ending in .pt2) torch logs a warning.
    with open(path, "wb") as f:
        torch.export.save(program, f)
