"""The deploy layer: what the commands do, as library functions over a manifold, fit and export.

One module per arrow of the flow, each returning a frozen result that the CLI only prints:
:func:`.materialise.materialise` (a config -> a plain PyTorch model folder),
:func:`.export.export_pick` (a fit document, a profile or a config -> a checked device file),
:func:`.check.check_profiles` (every profile: fit -> export -> gates). This is the only place where
manifolds meet :mod:`metaforge.export`, which itself takes any ``nn.Module``.
"""
