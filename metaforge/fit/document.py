"""The fit document: versioned JSON written by ``metaforge fit --json``, read by ``export --fit`` and ``bundle --fit``.

Schema ``metaforge-fit/2``: ``profile``, ``target``, ``batch``, ``manifold`` and ``manifold_sha256``
(the file it was fitted on: a document is refused for any other); the pick's ``config``
(``w=.. d=..``, as ``metaforge info`` writes it), ``accuracy`` (validation top-1, see
``accuracy_split``) and ``accuracy_source`` {``source``: ``measured`` with ``images``, the number of
validation images, or ``predicted`` by the manifold's accuracy model with ``sigma``}, ``latency_ms`` {``value``, ``stat``, ``source``}, ``memory_mb`` {``value``,
``source``}, ``params``, ``mflops``; ``budget``; ``feasible`` (false: the pick is the nearest config
and ``message`` says why); ``pareto`` and ``measured`` (the --measure walk), lists of entries with the
pick's fields; ``search`` {``method``, ``evaluated``, ``seconds``, ``confirmed``, ``note``}; ``latency_table``, the file behind
``table`` latencies (e.g. one that ``metaforge profile ingest`` wrote from a device's measurements) or
null. Sources: latency ``measured`` | ``table`` | ``roofline``, memory ``measured`` | ``table`` | ``analytic``.
Version 1 had no ``manifold_sha256``; documents written before ``accuracy_source`` read as measured. :func:`read_fit_document` is the one reader.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from metaforge.errors import InputError, MetaforgeError
from metaforge.io import atomic_write_text, file_sha256
from metaforge.space import ArchConfig

if TYPE_CHECKING:
    from metaforge.fit import Candidate, FitResult

SCHEMA = "metaforge-fit/2"


@dataclass(frozen=True)
class FitEntry:
    """A config with its accuracy and cost, as the document keeps it."""

    config: ArchConfig
    accuracy: float
    latency_ms: float
    latency_stat: str
    latency_source: str
    memory_mb: float
    memory_source: str
    params: int
    mflops: float
    accuracy_source: str = "measured"
    accuracy_images: int | None = None
    accuracy_sigma: float | None = None

    @classmethod
    def of(cls, c: Candidate, stat: str) -> "FitEntry":
        return cls(c.config, c.accuracy, c.latency_ms, stat, c.latency_source, c.memory_mb, c.memory_source, c.params, c.mflops,
                   c.accuracy_source, c.accuracy_images, c.accuracy_sigma)

    def to_dict(self) -> dict:
        src = ({"source": "predicted", "sigma": self.accuracy_sigma} if self.accuracy_source == "predicted"
               else {"source": self.accuracy_source, "images": self.accuracy_images})
        return {"config": str(self.config), "accuracy": self.accuracy, "accuracy_source": src,
                "latency_ms": {"value": self.latency_ms, "stat": self.latency_stat, "source": self.latency_source},
                "memory_mb": {"value": self.memory_mb, "source": self.memory_source},
                "params": self.params, "mflops": self.mflops}

    @classmethod
    def from_dict(cls, d: dict) -> "FitEntry":
        lat, mem = d["latency_ms"], d["memory_mb"]
        src = d.get("accuracy_source") or {"source": "measured"}
        images, sigma = src.get("images"), src.get("sigma")
        return cls(ArchConfig.parse(d["config"]), float(d["accuracy"]), float(lat["value"]), str(lat["stat"]), str(lat["source"]),
                   float(mem["value"]), str(mem["source"]), int(d["params"]), float(d["mflops"]), str(src["source"]),
                   None if images is None else int(images), None if sigma is None else float(sigma))


_EMPTY_PICK = {"config": None, "accuracy": None, "accuracy_source": None, "latency_ms": None, "memory_mb": None, "params": None, "mflops": None}


@dataclass(frozen=True)
class FitDocument:
    profile: str
    target: str
    batch: int
    manifold: str
    manifold_sha256: str
    pick: FitEntry | None
    budget: dict
    feasible: bool
    message: str
    pareto: tuple[FitEntry, ...]
    measured: tuple[FitEntry, ...]
    search: dict  # method, evaluated, seconds
    latency_table: str | None

    @classmethod
    def of(cls, r: FitResult) -> "FitDocument":
        stat, b = r.budget.latency_stat, r.budget
        return cls(
            profile=r.profile.name, target=r.profile.target, batch=r.profile.batch, manifold=r.manifold,
            manifold_sha256=r.manifold_sha256, pick=FitEntry.of(r.pick, stat) if r.pick else None,
            budget={"latency_ms": b.latency_ms, "latency_stat": b.latency_stat, "memory_mb": b.memory_mb,
                    "accuracy_floor": b.accuracy_floor},
            feasible=r.feasible, message=r.message, pareto=tuple(FitEntry.of(c, stat) for c in r.pareto),
            measured=tuple(FitEntry.of(c, stat) for c in r.measured),
            search={"method": r.method, "evaluated": r.evaluated, "confirmed": r.confirmed, "seconds": round(r.seconds, 3),
                    "note": r.note}, latency_table=r.latency_table,
        )

    def to_dict(self) -> dict:
        """The pick's fields at the top level, then budget, feasibility and the front."""
        return {
            "schema": SCHEMA, "profile": self.profile, "target": self.target, "batch": self.batch,
            "manifold": self.manifold, "manifold_sha256": self.manifold_sha256,
            **(self.pick.to_dict() if self.pick else _EMPTY_PICK),
            "accuracy_split": "val", "budget": self.budget, "feasible": self.feasible, "message": self.message,
            "pareto": [e.to_dict() for e in self.pareto], "measured": [e.to_dict() for e in self.measured],
            "search": self.search, "latency_table": self.latency_table,
        }

    def write(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def write_json(r: FitResult, path: str | Path) -> Path:
    return FitDocument.of(r).write(path)


def read_fit_document(path: str | Path, manifold: str | Path) -> FitDocument:
    """The document at ``path``, checked: its schema, that it was fitted on ``manifold``, and that it has a pick."""
    hint = "write one with `metaforge fit MANIFOLD --profile NAME --json FIT.json`"
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        msg = e.strerror if isinstance(e, OSError) else f"not JSON: {e}"
        raise InputError(f"cannot read fit document {path} ({msg}); {hint}") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema != SCHEMA:
        why = "an older metaforge wrote it, without the manifold's identity" if schema == "metaforge-fit/1" else f"schema {schema!r}"
        raise InputError(f"{path} is not a {SCHEMA} document ({why}); {hint}")
    if doc.get("manifold_sha256") != file_sha256(manifold):
        raise InputError(f"{path} was fitted on another manifold ({doc.get('manifold')}), not {manifold}: "
                         f"fit this one with `metaforge fit {manifold} --profile {doc.get('profile')} --json {path}`")
    if doc.get("feasible") is False:
        why = f" ({doc['message']})" if doc.get("message") else ""
        raise InputError(f"{path} records no feasible config{why}; relax the budget and fit again")
    if not doc.get("config"):
        raise InputError(f"{path} has no 'config': it is not a `metaforge fit --json` document")
    try:
        pick = FitEntry.from_dict(doc)
    except (AttributeError, KeyError, TypeError, ValueError, MetaforgeError):
        raise InputError(f"{path} has a malformed pick (its 'config', 'latency_ms' or 'memory_mb'); {hint}") from None
    try:
        pareto = tuple(FitEntry.from_dict(e) for e in doc.get("pareto", []))
        measured = tuple(FitEntry.from_dict(e) for e in doc.get("measured", []))
    except (AttributeError, KeyError, TypeError, ValueError, MetaforgeError):
        raise InputError(f"{path} has a malformed 'pareto' list (entries need 'config', 'accuracy', 'latency_ms': "
                         "{'value', 'stat', 'source'}, 'memory_mb', 'params' and 'mflops'); write it again with `metaforge fit --json`") from None
    fields = {f.name for f in dataclasses.fields(FitDocument)} - {"pick", "pareto", "measured"}
    try:
        return FitDocument(pick=pick, pareto=pareto, measured=measured, **{k: doc[k] for k in fields})
    except KeyError as e:
        raise InputError(f"{path} has no {e} field; {hint}") from None
