"""What the API doubles share: the call log, an ONNX I/O reader, the fake engine and timing cache.

Python 3.6 compatible (the 8.2 double runs under JetPack's Python). Not TensorRT: an "engine" here
is a JSON record of the parsed ONNX's I/O, and running it leaves the output buffers as allocated
(zeros). These doubles check which calls a release has and how they are called, never numbers.
"""

import json as _json
import os as _os

LOG_ENV = "TRT_DOUBLE_LOG"  # a file: one JSON line per recorded call
FAIL_ENV = "TRT_DOUBLE_FAIL"  # comma-separated call names that return failure (execute, timing_cache)
VERSION_ENV = "TRT_DOUBLE_VERSION"  # overrides __version__ (to pose as an unsupported release)
ENGINE_MAGIC = b"TRT-API-DOUBLE-ENGINE\n"
CACHE_MAGIC = b"TRT-API-DOUBLE-TIMING-CACHE "
ELEM_TYPES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "HALF"}


def log(event, **fields):
    path = _os.environ.get(LOG_ENV)
    if path:
        fields["event"] = event
        with open(path, "a") as f:
            f.write(_json.dumps(fields, sort_keys=True) + "\n")


def fails(name):
    return name in _os.environ.get(FAIL_ENV, "").split(",")


def version(default):
    return _os.environ.get(VERSION_ENV) or default


class HostMemory(object):
    """IHostMemory: bytes() of it is the serialised data."""

    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = data

    def __bytes__(self):
        return self._data

    @property
    def nbytes(self):
        return len(self._data)


def _varint(b, i):
    shift = result = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def _fields(b):
    """(field number, value) of a protobuf message; length-delimited values as bytes."""
    i, n = 0, len(b)
    while i < n:
        key, i = _varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(b, i)
        elif wire == 1:
            val, i = b[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(b, i)
            val, i = b[i:i + size], i + size
        elif wire == 5:
            val, i = b[i:i + 4], i + 4
        else:
            raise ValueError("protobuf wire type %d" % wire)
        if i > n:
            raise ValueError("truncated protobuf")
        yield num, val


def _value_info(b):
    name, elem, dims = None, None, []
    for num, val in _fields(b):
        if num == 1:
            name = val.decode("utf-8")
        elif num == 2:  # TypeProto
            for tnum, tval in _fields(val):
                if tnum != 1:  # tensor_type
                    continue
                for fnum, fval in _fields(tval):
                    if fnum == 1:
                        elem = ELEM_TYPES.get(fval, "UNKNOWN")
                    elif fnum == 2:  # TensorShapeProto
                        for dnum, dval in _fields(fval):
                            if dnum == 1:
                                d = dict(_fields(dval))
                                dims.append(d[1] if 1 in d else -1)
    return {"name": name, "dtype": elem, "shape": dims}


def read_onnx(data):
    """{"inputs", "outputs", "ops"} of an ONNX ModelProto; ValueError when the bytes are not one."""
    if not data.startswith(b"\x08"):
        raise ValueError("not an ONNX ModelProto (it does not start with ir_version)")
    graph = dict(_fields(data)).get(7)
    if graph is None:
        raise ValueError("ONNX model without a graph")
    out = {"inputs": [], "outputs": [], "ops": []}
    for num, val in _fields(graph):
        if num == 1:
            out["ops"].append(dict(_fields(val)).get(4, b"").decode("utf-8"))
        elif num == 11:
            out["inputs"].append(_value_info(val))
        elif num == 12:
            out["outputs"].append(_value_info(val))
    return out


def pack_engine(release, graph, flags):
    return ENGINE_MAGIC + _json.dumps({"version": release, "graph": graph, "flags": flags}).encode("utf-8")


def unpack_engine(data, release):
    """The engine record, or None (as TensorRT returns) for foreign bytes or another version's engine."""
    data = bytes(data)
    if not data.startswith(ENGINE_MAGIC):
        log("deserialize_failed", reason="not an engine")
        return None
    record = _json.loads(data[len(ENGINE_MAGIC):].decode("utf-8"))
    if record["version"] != release:
        log("deserialize_failed", reason="built with %s" % record["version"])
        return None
    return record


def cache_blob(release):
    return CACHE_MAGIC + release.encode("utf-8")
