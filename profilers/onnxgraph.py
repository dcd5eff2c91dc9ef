"""A minimal ONNX writer for the one graph the profilers make themselves: an identity.

The per-call overhead (binding input, allocating output, crossing into the runtime) is
measured on a graph that does nothing, so it can be subtracted from every isolated block.
Writing it needs no ``onnx`` package: the protobuf wire format of a one-node ModelProto is
encoded here by hand (field numbers from onnx/onnx.proto, ir_version 8, opset 17).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

IR_VERSION = 8
OPSET = 17
FLOAT = 1  # TensorProto.FLOAT


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def _value_info(name: str, shape: Sequence[int]) -> bytes:
    dims = b"".join(_field_bytes(1, _field_int(1, int(d))) for d in shape)  # Dimension.dim_value
    tensor = _field_int(1, FLOAT) + _field_bytes(2, dims)                   # elem_type, shape
    return _field_bytes(1, name.encode()) + _field_bytes(2, _field_bytes(1, tensor))


def identity_model(shape: Sequence[int] = (1, 1, 1, 1)) -> bytes:
    """Serialized ModelProto: ``output = Identity(input)`` on a float tensor of ``shape``."""
    node = (_field_bytes(1, b"input") + _field_bytes(2, b"output") + _field_bytes(3, b"identity")
            + _field_bytes(4, b"Identity"))
    graph = (_field_bytes(1, node) + _field_bytes(2, b"overhead")
             + _field_bytes(11, _value_info("input", shape))
             + _field_bytes(12, _value_info("output", shape)))
    opset = _field_bytes(1, b"") + _field_int(2, OPSET)
    return (_field_int(1, IR_VERSION) + _field_bytes(2, b"hwnas-profilers")
            + _field_bytes(7, graph) + _field_bytes(8, opset))


def write_identity_model(path: "str | Path", shape: Sequence[int] = (1, 1, 1, 1)) -> Path:
    path = Path(path)
    path.write_bytes(identity_model(shape))
    return path
