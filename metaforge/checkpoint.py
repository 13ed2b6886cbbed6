"""Manifold files: safetensors tensors plus JSON metadata in the safetensors header.

Loading parses only the safetensors header and raw tensor bytes: it never executes code. A file
that is corrupt, truncated, foreign (no metaforge header) or of an unknown format version is a
:class:`CheckpointError` that says so.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from metaforge import __version__
from metaforge.errors import CheckpointError, DataError
from metaforge.formats import MANIFOLD_FORMAT
from metaforge.io import atomic_write_safetensors
from metaforge.space import ArchSpace

if TYPE_CHECKING:  # torch is imported where tensors are needed: reading a header stays fast
    import torch

    from metaforge.manifold import Manifold

FORMAT = MANIFOLD_FORMAT
FORMAT_VERSION = 1
_CALIBRATION = "calibration.images"
_ACCURACY_MODEL = "accuracy_model"  # header key of the accuracy record (metaforge.accuracy_model); absent in older files


FP16_MAX = 65504.0


def stored(t: torch.Tensor) -> torch.Tensor:
    """A tensor as the file keeps it: float16 where its values fit (half the bytes; weights are
    generated to ~5e-4 relative precision), else unchanged. Loading casts back to float32."""
    import torch

    if t.dtype == torch.float32 and (t.numel() == 0 or float(t.abs().max()) <= FP16_MAX):
        return t.half()
    return t


def round_to_storage(module: torch.nn.Module) -> None:
    """Round ``module``'s tensors in place to what :func:`save_manifold` keeps, so that what is
    measured before saving (the accuracy table) is what a loaded file gives."""
    import torch

    with torch.no_grad():
        for v in module.state_dict().values():
            v.copy_(stored(v))


def save_manifold(manifold: Manifold, path: str | Path) -> Path:
    """Write ``manifold`` to ``path`` atomically (INR tensors as float16 where they fit)."""
    tensors = {f"inr.{k}": stored(v.detach().cpu()).contiguous() for k, v in manifold.inr.state_dict().items()}
    if manifold.calibration is not None:
        tensors[_CALIBRATION] = manifold.calibration.detach().cpu().contiguous()
    info = dataclasses.asdict(manifold.info)
    info["normalization"] = manifold.info.normalization.to_dict()
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "metaforge_version": __version__,
        "space": json.dumps(manifold.space.to_dict()),
        "inr": json.dumps(manifold.inr.describe()),
        "info": json.dumps(info),
    }
    if manifold.accuracy_record is not None:
        meta[_ACCURACY_MODEL] = manifold.accuracy_record.to_json()
    return atomic_write_safetensors(path, tensors, meta)


def read_header(path: str | Path) -> dict[str, str]:
    """The metadata of a manifold file, validated (format and version)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a manifold file; give the .safetensors file `metaforge train` wrote")
    if not path.is_file():
        raise CheckpointError(f"manifold file not found: {path}; train one with `metaforge train --out {path}`")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): an interrupted copy? restore it or retrain with `metaforge train`")
    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no torch import
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable manifold (corrupt or truncated safetensors file: {e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a metaforge manifold (no '{FORMAT}' header)")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has manifold format version {meta.get('format_version')!r}; this metaforge "
            f"({__version__}) reads version {FORMAT_VERSION}: upgrade metaforge or retrain"
        )
    return meta


def read_space(path: str | Path) -> ArchSpace:
    """The space a manifold file covers, from its header alone (no torch): configs are checked before any loading."""
    try:
        return ArchSpace.from_dict(json.loads(read_header(path)["space"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is a damaged manifold ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                              "retrain or restore it from a copy") from None


def load_manifold(path: str | Path, device: str | torch.device = "cpu") -> Manifold:
    """Load a manifold written by :func:`save_manifold` (no code is executed)."""
    path = Path(path)
    meta = read_header(path)
    import torch

    from metaforge.data import Normalization
    from metaforge.inr import INRConfig, WeightINR
    from metaforge.manifold import Manifold, ManifoldInfo

    try:
        space = ArchSpace.from_dict(json.loads(meta["space"]))
        inr_desc = json.loads(meta["inr"])
        bn = bool(inr_desc.pop("bn"))
        info_d = json.loads(meta["info"])
        info_d["normalization"] = Normalization.from_dict(info_d["normalization"])
        info_d["classes"] = tuple(info_d["classes"])
        info_d["seen_widths"] = tuple(tuple(w) for w in info_d["seen_widths"])
        info_d["seen_depths"] = tuple(tuple(d) for d in info_d["seen_depths"])
        info = ManifoldInfo(**info_d)
        inr = WeightINR(space, INRConfig(**inr_desc), bn)
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = {k.removeprefix("inr."): v for k, v in tensors.items() if k.startswith("inr.")}
        _check_tensors(path, inr.state_dict(), state)
        inr.load_state_dict(state)
        calibration = tensors.get(_CALIBRATION)
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError, SafetensorError, DataError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is a damaged manifold ({msg}); retrain or restore it from a copy") from None
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path} holds non-finite values (NaN or inf) in 'inr.{k}'; "
                                  "the training diverged or the file is damaged: retrain it")
    inr.eval().to(device)
    return Manifold(inr, info, calibration, source=path, accuracy_record=_accuracy_record(path, meta, space))


def _accuracy_record(path: Path, meta: dict[str, str], space: ArchSpace):
    """The stored accuracy record, checked; None for a manifold written before there was one."""
    from metaforge.accuracy_model import AccuracyRecord, RecordError

    text = meta.get(_ACCURACY_MODEL)
    if text is None:
        return None
    try:
        return AccuracyRecord.from_json(text, space)
    except RecordError as e:
        raise CheckpointError(f"{path} has a damaged accuracy record ({e}); retrain it or restore it from a copy") from None


def _check_tensors(path: Path, expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    """Name the first missing, unexpected or misshapen INR tensor (torch's own message spans many lines)."""
    problems = [f"missing tensor 'inr.{k}'" for k in expected if k not in state]
    problems += [f"unexpected tensor 'inr.{k}'" for k in state if k not in expected]
    problems += [f"tensor 'inr.{k}' has shape {list(v.shape)}, its header needs {list(expected[k].shape)}"
                 for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"{path} is a damaged manifold: {problems[0]}{more}; retrain or restore it from a copy")
