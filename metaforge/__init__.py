"""metaforge: one metamorphic network, the right-sized model for every embedded device."""

__version__ = "0.1.0"

from metaforge.checkpoint import load_manifold, save_manifold  # noqa: E402
from metaforge.manifold import Manifold  # noqa: E402
from metaforge.space import ArchConfig, ArchSpace  # noqa: E402

__all__ = ["ArchConfig", "ArchSpace", "Manifold", "load_manifold", "save_manifold", "__version__"]
