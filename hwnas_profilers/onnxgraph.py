"""The graphs the profilers make themselves: an identity (per-call overhead) and a small
convolution (the reference of figure ``ref``).

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


def write_reference_model(path: "str | Path", channels: int = 16, size: int = 32) -> Path:
    """The reference graph of figure ``ref`` (``hwnas_profilers.protocol``): two 3x3 convolutions
    with ReLU on a ``channels`` x ``size`` x ``size`` input (about 5 MFLOP, a tenth of a
    millisecond on one CPU core): compute-bound like the blocks, so a neighbour's load
    slows it alike, and short, so it fits the brief uncontended moments of a shared host.
    Built with ``onnx`` (a dependency of every backend's precision conversion)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes, x = [], [], "input"
    for i in range(2):
        w = (rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        out = "output" if i == 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"c{i}"], [out]))
        x = out
    shape = [1, channels, size, size]
    graph = helper.make_graph(nodes, "reference",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="hwnas-profilers")
    model.ir_version = IR_VERSION
    path = Path(path)
    onnx.save(model, str(path))
    return path
