"""API double of cuda-python's CUDA runtime module (``cuda.bindings.runtime``, cuda-python 12.x).

Transcribed from NVIDIA/cuda-python, cuda/bindings/runtime.pyx (earlier ``cuda/cudart.pyx``): every
call returns a tuple whose first item is a ``cudaError_t``: ``cudaStreamCreate() -> (err, stream)``,
``cudaMalloc(size) -> (err, devPtr)``, ``cudaFree(devPtr) -> (err,)``,
``cudaMemcpyAsync(dst, src, count, kind, stream) -> (err,)``, ``cudaStreamSynchronize(stream) -> (err,)``.
Device memory is host bytes here; only these calls are bound (others raise AttributeError).
"""

import ctypes as _ctypes
import enum as _enum

from . import _core

_memory = {}


class cudaError_t(_enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2


class cudaMemcpyKind(_enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


class cudaStream_t(object):
    __slots__ = ("_handle",)

    def __init__(self, handle):
        self._handle = handle

    def __int__(self):
        return self._handle

    def getPtr(self):
        return self._handle


def _stream_ok(stream):
    return isinstance(stream, cudaStream_t) or isinstance(stream, int)


def cudaStreamCreate():
    _core.log("cudaStreamCreate")
    return cudaError_t.cudaSuccess, cudaStream_t(0x5000 + len(_memory))


def cudaMalloc(size):
    ptr = 0x10000000 + 0x100000 * (len(_memory) + 1)
    _memory[ptr] = bytearray(int(size))
    _core.log("cudaMalloc", size=int(size))
    return cudaError_t.cudaSuccess, ptr


def cudaFree(devPtr):
    return (cudaError_t.cudaSuccess if _memory.pop(int(devPtr), None) is not None else cudaError_t.cudaErrorInvalidValue,)


def cudaMemcpyAsync(dst, src, count, kind, stream):
    if not isinstance(kind, cudaMemcpyKind) or not _stream_ok(stream):
        raise TypeError("cudaMemcpyAsync(): incompatible arguments")
    dev = dst if kind == cudaMemcpyKind.cudaMemcpyHostToDevice else src
    buf = _memory.get(int(dev))
    if buf is None or count > len(buf):
        return (cudaError_t.cudaErrorInvalidValue,)
    if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
        buf[:count] = _ctypes.string_at(src, count)
    elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
        _ctypes.memmove(dst, bytes(buf[:count]), count)
    else:
        return (cudaError_t.cudaErrorInvalidValue,)
    _core.log("cudaMemcpyAsync", kind=kind.name, count=int(count))
    return (cudaError_t.cudaSuccess,)


def cudaStreamSynchronize(stream):
    if not _stream_ok(stream):
        raise TypeError("cudaStreamSynchronize(): incompatible arguments")
    return (cudaError_t.cudaSuccess,)
