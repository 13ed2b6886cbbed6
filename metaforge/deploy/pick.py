"""Which config to export and for which target: from a fit document, a profile (fitted now) or a config.

Everything that can be refused without loading the manifold is read and checked here first, so a
bad ``--fit``, ``--profile``, ``--config`` or ``--format`` is answered at once, without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from metaforge.errors import InputError
from metaforge.profiles import Profile, load_profile
from metaforge.space import ArchConfig
from metaforge.targets import Target, load_target

if TYPE_CHECKING:
    from metaforge.manifold import Manifold
    from metaforge.progress import Progress


@dataclass(frozen=True)
class Choice:
    source: str  # "fit FILE", "profile NAME" or "config"
    config: ArchConfig | None  # None: fit ``profile`` on the manifold first
    target: Target | None  # the target it was fitted for, if any
    profile: Profile | None = None


def choose(manifold: str | Path, *, fit_json: str | Path | None = None, profile: str | Path | None = None,
           config: str | None = None) -> Choice:
    """Exactly one of the three, read and checked (the fit document against ``manifold``)."""
    given = [name for name, v in (("--fit", fit_json), ("--profile", profile), ("--config", config)) if v]
    if len(given) != 1:
        raise InputError(f"give exactly one of --fit FIT.json, --profile NAME or --config C (got {', '.join(given) or 'none'})")
    if config:
        return Choice("config", ArchConfig.parse(config), None)
    if fit_json:
        from metaforge.checkpoint import read_header
        from metaforge.fit.document import read_fit_document

        read_header(manifold)  # a bad manifold is named as such, not as a fit for another one
        doc = read_fit_document(fit_json, manifold)
        return Choice(f"fit {fit_json}", doc.pick.config, load_target(doc.target))
    prof = load_profile(profile)
    return Choice(f"profile {prof.name}", None, prof.resolved_target, prof)


def config_of(choice: Choice, m: Manifold, progress: Progress | None = None) -> ArchConfig:
    """The chosen config, fitting the profile on the loaded manifold when the choice is a profile."""
    if choice.config is not None:
        return choice.config
    from metaforge.fit import fit

    return fit(m, choice.profile, progress=progress).pick.config
