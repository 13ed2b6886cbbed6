"""metaforge: one metamorphic network, the right-sized model for every embedded device."""

__version__ = "0.1.0"

__all__ = ["ArchConfig", "ArchSpace", "Manifold", "load_manifold", "save_manifold", "__version__"]

_LAZY = {"load_manifold": "metaforge.checkpoint", "save_manifold": "metaforge.checkpoint", "Manifold": "metaforge.manifold",
         "ArchConfig": "metaforge.space", "ArchSpace": "metaforge.space"}


def __getattr__(name: str):
    """``metaforge.load_manifold`` etc. import on first use: the CLI answers bad input without importing torch."""
    if name not in _LAZY:
        raise AttributeError(f"module 'metaforge' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
