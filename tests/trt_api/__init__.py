"""API-conformance doubles of the TensorRT Python bindings (8.2, 10.x, 11.0), pycuda and cuda-python.

One module per release (trt82, trt10, trt11), each bound to the names and argument names of that
release's bindings as transcribed in its docstring; anything else raises AttributeError or
TypeError. ``install`` writes a folder of import shims so that ``import tensorrt`` (and
``pycuda.driver`` or ``cuda.bindings.runtime``) finds a double in a subprocess, under Python 3.6
as under 3.11. The doubles check calls, not numbers: their engines output zeros. A real engine
build is never what these tests run.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASES = {"8.2": "trt82", "10": "trt10", "11": "trt11"}
CUDA = {"pycuda": {"pycuda/__init__.py": None, "pycuda/driver.py": "pycuda_driver", "pycuda/autoinit.py": None},
        "cuda-python": {"cuda/__init__.py": None, "cuda/bindings/__init__.py": None, "cuda/bindings/runtime.py": "cudart"}}
SHIM = ("import sys\nsys.path.insert(0, %r)\nimport importlib\n"
        "sys.modules[__name__] = importlib.import_module('trt_api.%s')\n")


def install(folder, release, cuda):
    """Shims in ``folder`` for TensorRT ``release`` ("8.2", "10", "11") and ``cuda``; returns the folder."""
    files = {"tensorrt/__init__.py": RELEASES[release]}
    files.update(CUDA[cuda] if cuda else {})
    for rel, module in files.items():
        path = os.path.join(folder, rel)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            f.write(SHIM % (os.path.dirname(HERE), module) if module else "")
    return folder


def activate(release, cuda, modules):
    """The doubles as ``sys.modules`` entries in this process (``modules``: a dict to update, e.g. via monkeypatch)."""
    import importlib

    if os.path.dirname(HERE) not in sys.path:
        sys.path.insert(0, os.path.dirname(HERE))
    trt = importlib.import_module("trt_api." + RELEASES[release])
    entries = {"tensorrt": trt}
    if cuda == "cuda-python":
        rt = importlib.import_module("trt_api.cudart")
        bindings = _package("cuda.bindings", runtime=rt)
        entries.update({"cuda": _package("cuda", bindings=bindings), "cuda.bindings": bindings, "cuda.bindings.runtime": rt})
    elif cuda == "pycuda":
        drv = importlib.import_module("trt_api.pycuda_driver")
        entries.update({"pycuda": _package("pycuda", driver=drv), "pycuda.driver": drv, "pycuda.autoinit": _package("pycuda.autoinit")})
    for name, module in entries.items():  # item by item: ``modules`` may be a monkeypatching mapping
        modules[name] = module
    return trt


def _package(name, **attrs):
    import types

    mod = types.ModuleType(name)
    mod.__path__ = []
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod
