"""API double of ``pycuda.driver`` (pycuda 2019.1 to 2022.x, JetPack 4.6's python3-pycuda).

Transcribed from inducer/pycuda, src/wrapper/wrap_cudadrv.cpp and pycuda/driver.py:
``Stream()`` (``.handle``, ``.synchronize()``), ``mem_alloc(bytes) -> DeviceAllocation`` (``int()``
is the device pointer), ``pagelocked_empty(shape, dtype, order="C", mem_flags=0)``,
``memcpy_htod_async(dest, src, stream=None)``, ``memcpy_dtoh_async(dest, src, stream=None)``.
Device memory is host bytes here; only these calls are bound (others raise AttributeError).
"""

import numpy as _np

from . import _core

_memory = {}


class Stream(object):
    __slots__ = ("handle",)

    def __init__(self, flags=0):
        self.handle = 0x6000 + len(_memory)
        _core.log("pycuda.Stream")

    def synchronize(self):
        pass


class DeviceAllocation(object):
    __slots__ = ("_ptr",)

    def __init__(self, ptr):
        self._ptr = ptr

    def __int__(self):
        return self._ptr

    def __index__(self):
        return self._ptr


def mem_alloc(bytes):
    ptr = 0x20000000 + 0x100000 * (len(_memory) + 1)
    _memory[ptr] = bytearray(int(bytes))
    _core.log("pycuda.mem_alloc", size=int(bytes))
    return DeviceAllocation(ptr)


def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
    return _np.empty(shape, dtype, order=order)


def _device(dev, nbytes):
    if not isinstance(dev, DeviceAllocation) or nbytes > len(_memory[int(dev)]):
        raise TypeError("pycuda: a DeviceAllocation large enough is required")
    return _memory[int(dev)]


def memcpy_htod_async(dest, src, stream=None):
    data = _np.ascontiguousarray(src).tobytes()
    _device(dest, len(data))[:len(data)] = data
    _core.log("pycuda.memcpy_htod_async", count=len(data))


def memcpy_dtoh_async(dest, src, stream=None):
    buf = _device(src, dest.nbytes)
    dest[...] = _np.frombuffer(bytes(buf[:dest.nbytes]), dest.dtype).reshape(dest.shape)
    _core.log("pycuda.memcpy_dtoh_async", count=int(dest.nbytes))
