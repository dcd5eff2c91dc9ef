"""The graphs the LiteRT backend makes itself, as ``.tflite`` files: an identity (per-call
overhead) and the reference convolution pair of figure ``ref``.

They are the LiteRT twins of :mod:`hwnas_profilers.onnxgraph`. A device with only
``ai-edge-litert`` has neither ``onnx`` nor a converter, so the two models are written
here with the TFLite flatbuffer schema that ``ai-edge-litert`` itself ships
(``ai_edge_litert.schema_py_generated``, object API, file identifier ``TFL3``). The
reference uses the same weights as the ONNX one (``numpy`` seed 0, scale 0.1), in TFLite's
layouts: NHWC activations, OHWI convolution weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as fb

    return fb


def _tensor(fb: Any, name: str, shape: Sequence[int], buffer: int = 0) -> Any:
    t = fb.TensorT()
    t.name, t.shape, t.type, t.buffer = name, [int(d) for d in shape], fb.TensorType.FLOAT32, buffer
    return t


def _buffer(fb: Any, data: "np.ndarray | None" = None) -> Any:
    b = fb.BufferT()
    if data is not None:
        b.data = np.frombuffer(np.ascontiguousarray(data, "<f4").tobytes(), np.uint8)
    return b


def _signature(fb: Any, n_tensors_in: int, n_out: int) -> Any:
    sig = fb.SignatureDefT()
    sig.signatureKey = "serving_default"
    sig.inputs = [fb.TensorMapT()]
    sig.inputs[0].name, sig.inputs[0].tensorIndex = "input", n_tensors_in
    sig.outputs = [fb.TensorMapT()]
    sig.outputs[0].name, sig.outputs[0].tensorIndex = "output", n_out
    return sig


def _serialize(fb: Any, model: Any) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _model(fb: Any, tensors: list, ops: list, codes: list, buffers: list, out: int,
           description: str) -> bytes:
    sub = fb.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs = tensors, ops, [0], [out]
    sub.name = "main"
    m = fb.ModelT()
    m.version, m.description = SCHEMA_VERSION, description
    m.operatorCodes, m.subgraphs, m.buffers = codes, [sub], buffers
    m.signatureDefs = [_signature(fb, 0, out)]
    return _serialize(fb, m)


def _code(fb: Any, op: int) -> Any:
    c = fb.OperatorCodeT()
    c.builtinCode, c.deprecatedBuiltinCode, c.version = op, min(op, 127), 1
    return c


def identity_model(shape: Sequence[int] = (1, 1, 1, 1)) -> bytes:
    """``output = input + 0`` on a float tensor of ``shape``: one ADD (TFLite has no
    Identity op, and a graph without operators is not a runnable model)."""
    fb = _schema()
    buffers = [_buffer(fb), _buffer(fb), _buffer(fb, np.zeros((1,), np.float32)), _buffer(fb)]
    tensors = [_tensor(fb, "input", shape, 1), _tensor(fb, "zero", (1,), 2),
               _tensor(fb, "output", shape, 3)]
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.AddOptions, fb.AddOptionsT()
    return _model(fb, tensors, [op], [_code(fb, fb.BuiltinOperator.ADD)], buffers, 2,
                  "hwnas-profilers identity")


def reference_model(channels: int = 16, size: int = 32) -> bytes:
    """Two 3x3 convolutions with fused ReLU, ``channels`` x ``size`` x ``size`` (NHWC): the
    graph of :func:`hwnas_profilers.onnxgraph.write_reference_model`, same weights."""
    fb = _schema()
    rng = np.random.default_rng(0)
    shape = (1, size, size, channels)
    buffers = [_buffer(fb), _buffer(fb)]  # buffer 0 is the schema's empty sentinel
    tensors = [_tensor(fb, "input", shape, 1)]
    ops, x = [], 0
    for i in range(2):
        w = (rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32)
        for name, data, shp in ((f"w{i}", w.transpose(0, 2, 3, 1), (channels, 3, 3, channels)),
                                (f"b{i}", np.zeros(channels, np.float32), (channels,))):
            buffers.append(_buffer(fb, data))
            tensors.append(_tensor(fb, name, shp, len(buffers) - 1))
        buffers.append(_buffer(fb))
        tensors.append(_tensor(fb, "output" if i == 1 else f"r{i}", shape, len(buffers) - 1))
        opt = fb.Conv2DOptionsT()
        opt.padding, opt.strideW, opt.strideH = fb.Padding.SAME, 1, 1
        opt.fusedActivationFunction = fb.ActivationFunctionType.RELU
        op = fb.OperatorT()
        n = len(tensors)
        op.opcodeIndex, op.inputs, op.outputs = 0, [x, n - 3, n - 2], [n - 1]
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.Conv2DOptions, opt
        ops.append(op)
        x = n - 1
    return _model(fb, tensors, ops, [_code(fb, fb.BuiltinOperator.CONV_2D)], buffers, x,
                  "hwnas-profilers reference")


def write_identity_model(path: "str | Path", shape: Sequence[int] = (1, 1, 1, 1)) -> Path:
    path = Path(path)
    path.write_bytes(identity_model(shape))
    return path


def write_reference_model(path: "str | Path", channels: int = 16, size: int = 32) -> Path:
    path = Path(path)
    path.write_bytes(reference_model(channels, size))
    return path
