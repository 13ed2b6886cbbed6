"""The ``format`` header values of metaforge's safetensors files, so each loader can name the other kind.

A manifold (:mod:`metaforge.checkpoint`) and a plain model (:mod:`metaforge.model_io`) are both
safetensors files; a loader handed the wrong one says which it got without importing the other module.
"""

MANIFOLD_FORMAT = "metaforge-manifold"
MODEL_FORMAT = "metaforge-model"
