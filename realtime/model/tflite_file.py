"""A TensorFlow-free reader of TF Lite files: tensors by name, their constant data, and the ops.

Why: the transfer network's weights live in the fp16 ``.tflite`` file, and every backend that
rebuilds the network (``tf``, ``torch``) needs them.  Reading them through ``tf.lite.Interpreter``
imports TensorFlow (1.7 s and 600 MB, and not installable on some GPU machines), so the PyTorch
path could not run without it.  A TF Lite file is a FlatBuffer; the few tables needed here (Model,
SubGraph, Tensor, Buffer, Operator, OperatorCode) are read by hand with :mod:`struct` and numpy, so
this module needs neither TensorFlow nor the ``flatbuffers`` package.

The layout (``tensorflow/lite/schema/schema.fbs``), field indices in brackets:

    Model:        operator_codes [1], subgraphs [2], buffers [4]
    SubGraph:     tensors [0], operators [3]
    Tensor:       shape [0], type [1], buffer [2], name [3]
    Buffer:       data [0] (bytes inside the file), offset [1] and size [2] (data after it, >2 GB files)
    Operator:     opcode_index [0], inputs [1], outputs [2]
    OperatorCode: deprecated_builtin_code [0] (int8), builtin_code [3] (int32: the larger of the two)

A weight in the fp16 file is a float16 constant, sometimes behind a DEQUANTIZE op whose output
carries the name; :meth:`TFLiteFile.tensor` follows DEQUANTIZE (float16 -> float32) in either case
and returns float32, as ``tf.lite.Interpreter.get_tensor`` followed by a cast to float32 does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: TensorType -> numpy dtype (the types this project's files use; others raise when read).
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),  # FLOAT32
    1: np.dtype("<f2"),  # FLOAT16
    2: np.dtype("<i4"),  # INT32
    3: np.dtype("u1"),  # UINT8
    4: np.dtype("<i8"),  # INT64
    6: np.dtype("?"),  # BOOL
    7: np.dtype("<i2"),  # INT16
    9: np.dtype("i1"),  # INT8
    10: np.dtype("<f8"),  # FLOAT64
}
DEQUANTIZE = 6  # BuiltinOperator.DEQUANTIZE


class _Table:
    """One FlatBuffer table: fields by index, read through its vtable."""

    __slots__ = ("buf", "pos", "_vt", "_vt_len")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self._vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vt_len = struct.unpack_from("<H", buf, self._vt)[0]

    def _field(self, index: int) -> int:
        """Byte position of field ``index``, or 0 where it is absent (its default applies)."""
        at = 4 + 2 * index
        if at >= self._vt_len:
            return 0
        off = struct.unpack_from("<H", self.buf, self._vt + at)[0]
        return self.pos + off if off else 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        p = self._field(index)
        return struct.unpack_from("<" + fmt, self.buf, p)[0] if p else default

    def _target(self, index: int) -> int:
        p = self._field(index)
        return p + struct.unpack_from("<I", self.buf, p)[0] if p else 0

    def table(self, index: int) -> _Table | None:
        p = self._target(index)
        return _Table(self.buf, p) if p else None

    def vector(self, index: int) -> tuple[int, int]:
        """(position of the first element, length); (0, 0) where absent."""
        p = self._target(index)
        return (p + 4, struct.unpack_from("<I", self.buf, p)[0]) if p else (0, 0)

    def tables(self, index: int) -> list[_Table]:
        start, n = self.vector(index)
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out

    def ints(self, index: int, fmt: str = "i") -> list[int]:
        start, n = self.vector(index)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start)) if n else []

    def data(self, index: int) -> memoryview:
        start, n = self.vector(index)
        return memoryview(self.buf)[start : start + n]

    def string(self, index: int) -> str:
        return bytes(self.data(index)).decode("utf-8")


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the first subgraph: what the file says about it."""

    index: int
    name: str
    shape: tuple[int, ...]
    type: int  # TF Lite TensorType
    buffer: int


@dataclass(frozen=True)
class OpInfo:
    """An operator of the first subgraph: its builtin code and tensor indices."""

    code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class TFLiteFile:
    """The tensors and constant data of a ``.tflite`` file's first subgraph, without TensorFlow."""

    def __init__(self, source: Path | bytes) -> None:
        self.buf = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
        if len(self.buf) < 8 or self.buf[4:8] != b"TFL3":
            raise ValueError("not a TF Lite file (no TFL3 identifier)")
        model = _Table(self.buf, struct.unpack_from("<I", self.buf, 0)[0])
        self._buffers = model.tables(4)
        codes = [max(c.scalar(0, "b"), c.scalar(3, "i")) for c in model.tables(1)]
        sub = model.tables(2)[0]
        self.tensors: list[TensorInfo] = [
            TensorInfo(i, t.string(3), tuple(t.ints(0)), t.scalar(1, "b"), t.scalar(2, "I"))
            for i, t in enumerate(sub.tables(0))
        ]
        self.ops: list[OpInfo] = [
            OpInfo(codes[o.scalar(0, "I")], tuple(o.ints(1)), tuple(o.ints(2))) for o in sub.tables(3)
        ]
        self.by_name: dict[str, TensorInfo] = {t.name: t for t in self.tensors}
        self._producer: dict[int, OpInfo] = {out: op for op in self.ops for out in op.outputs}

    def raw(self, t: TensorInfo) -> np.ndarray | None:
        """A tensor's constant data in its stored type, or None where it has none (computed)."""
        if t.type not in _DTYPES:
            raise ValueError(f"tensor {t.name!r}: TF Lite type {t.type} is not supported by this reader")
        buf = self._buffers[t.buffer] if 0 <= t.buffer < len(self._buffers) else None
        if buf is None:
            return None
        data = buf.data(0)
        if not len(data):
            offset, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
            if offset <= 1:  # 0 = no data; 1 = a placeholder the converter leaves
                return None
            data = memoryview(self.buf)[offset : offset + size]
        return np.frombuffer(data, _DTYPES[t.type]).reshape(t.shape)

    def tensor(self, name: str) -> np.ndarray:
        """The constant tensor ``name`` as float32 (a copy), following a DEQUANTIZE op (float16
        constant -> float32) where the name is on the dequantized output."""
        t = self.by_name.get(name)
        if t is None:
            raise KeyError(f"no tensor named {name!r} in the TF Lite file")
        data = self.raw(t)
        if data is None:
            op = self._producer.get(t.index)
            if op is None or op.code != DEQUANTIZE:
                raise ValueError(f"tensor {name!r} is computed, not stored in the file")
            src = self.tensors[op.inputs[0]]
            if src.type != 1:  # integer quantization needs scale/zero point: not in the fp16 file
                raise ValueError(f"tensor {name!r}: DEQUANTIZE from TF Lite type {src.type} is not supported")
            data = self.raw(src)
            if data is None:
                raise ValueError(f"tensor {name!r}: its DEQUANTIZE input {src.name!r} holds no data")
        return np.array(data, np.float32)

    def with_int32(self, values: dict[str, np.ndarray]) -> bytes:
        """A copy of the file's bytes with the int32 constants ``values`` (name -> same-length
        array) overwritten in place: the layout is unchanged, so nothing else moves."""
        out = bytearray(self.buf)
        written: dict[int, bytes] = {}
        for name, v in values.items():
            t = self.by_name.get(name)
            if t is None or t.type != 2:
                raise ValueError(f"no int32 tensor named {name!r} in the TF Lite file")
            new = np.asarray(v, "<i4").tobytes()
            start, n = self._buffers[t.buffer].vector(0)
            if n != len(new):
                raise ValueError(f"tensor {name!r} holds {n} bytes, not {len(new)}")
            if written.setdefault(t.buffer, new) != new:  # two tensors sharing one buffer
                raise ValueError(f"tensor {name!r} shares its data with another tensor given other values")
            out[start : start + n] = new
        return bytes(out)
