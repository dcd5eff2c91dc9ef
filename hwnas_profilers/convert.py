"""The one recipe that turns an fp32 ONNX file into its fp16 or int8 Q/DQ copy.

Both sides use it: the profilers convert every block of a bundle with it (so a device
table holds the latency of these graphs), and the engines convert the chosen network with
it (so an engine runs the graph its table predicted). The recipe, in order:

1. initializer aliases inlined (:func:`inline_initializer_identities`): ``torch.onnx.export``
   writes a duplicated weight as an ``Identity`` of another initializer; left in place,
   the float16 converter keeps them fp32 and ONNX Runtime's quantizer leaves those biases
   unquantized (no QLinearConv fusion);
2. the conversion: ONNX Runtime's float16 converter (weights and activations fp16, input
   and output kept fp32), or ONNX Runtime static quantization to Q/DQ (per-channel
   symmetric int8 weights, int8 activations) calibrated on the images it is given;
3. nodes sorted topologically (the float16 converter appends its input casts after their
   consumers; the checker and some runtimes refuse an unsorted graph).

Calibration: the engine passes real training images; a profiler has none on the device
and passes :func:`random_calibration` (the latency of a dense block does not depend on
its scales). Needs ``onnx`` and ``onnxruntime``, imported here only when converting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .base import MissingRuntime, ProfilerError

def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise MissingRuntime(f"converting ONNX files needs the onnx package ({exc}); "
                             "install it with: pip install onnx") from None
    return onnx


def inline_initializer_identities(model: Any) -> int:
    """Replace ``Identity`` nodes that alias an initializer by a copy of it, in place.

    Networks with fresh weights (the bundle's blocks: every folded BN bias is zero) are
    full of them, and ONNX Runtime's static quantizer then leaves those convolutions'
    biases unquantized ("Expected bias ... to be an initializer"), so the Q/DQ graph does
    not fuse to QLinearConv and measures far slower than the same network with trained
    weights. Returns the number inlined."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    keep, n = [], 0
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            arr = numpy_helper.to_array(inits[node.input[0]])
            model.graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
            n += 1
        else:
            keep.append(node)
    if n:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return n


def toposort(graph: Any) -> None:
    """Reorder ``graph.node`` topologically, in place (stable for already sorted parts)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ProfilerError("the converted ONNX graph has a cycle")
        for n in ready:
            known.update(n.output)
            ordered.append(n)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(src: "str | Path", dst: "str | Path") -> Path:
    """Write the fp16 copy of the fp32 ONNX file ``src`` to ``dst`` (fp32 input/output)."""
    onnx = _onnx()
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise MissingRuntime(f"fp16 needs onnxruntime's float16 converter ({exc}); "
                             "install it with: pip install 'hwnas[onnxruntime]' onnx") from None
    model = onnx.load(str(src))
    inline_initializer_identities(model)
    model = convert_float_to_float16(model, keep_io_types=True)
    toposort(model.graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)


def random_calibration(input_shape: Sequence[int], n: int = 4, seed: int = 1) -> np.ndarray:
    """``n`` deterministic random inputs of ``input_shape`` (batch included), stacked."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.standard_normal(tuple(int(d) for d in input_shape)).astype("float32")
                     for _ in range(n)])


def calibration_reader(name: str, batches: "np.ndarray | Sequence[np.ndarray]") -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` feeding each of ``batches`` to input
    ``name`` once (each already shaped as the model's input)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = iter(
                [{name: np.ascontiguousarray(b, np.float32)} for b in batches])

        def get_next(self) -> "dict[str, np.ndarray] | None":
            return next(self._it, None)

    return _Reader()


def to_qdq_int8(src: "str | Path", dst: "str | Path",
                batches: "np.ndarray | Sequence[np.ndarray]") -> Path:
    """Write the int8 Q/DQ copy of the fp32 ONNX file ``src`` to ``dst``, calibrated on
    ``batches`` (each one model input: an engine's images as ``x[None]``, or
    :func:`random_calibration`)."""
    onnx = _onnx()
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    except ImportError as exc:
        raise MissingRuntime(f"int8 needs onnxruntime.quantization to make Q/DQ models "
                             f"({exc}); install it with: pip install 'hwnas[onnxruntime]' onnx"
                             ) from None
    dst = Path(dst)
    model = onnx.load(str(src))
    inline_initializer_identities(model)
    toposort(model.graph)
    plain = dst.with_name(dst.name + ".src.onnx")
    onnx.save(model, str(plain))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's pre-processing advice, once per file
    try:
        reader = calibration_reader(model.graph.input[0].name, batches)
        quantize_static(str(plain), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
        plain.unlink(missing_ok=True)
    out = onnx.load(str(dst))
    toposort(out.graph)
    onnx.save(out, str(dst))
    return dst
