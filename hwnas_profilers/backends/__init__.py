"""Built-in backends, one module per runtime; each imports its runtime only inside itself.

Shared by several backends: the input tensor every runner binds, and the precision copies
of a block's fp32 ONNX file that a bundle does not hold: an int8 Q/DQ copy (static
quantization through ``onnxruntime.quantization``) and an fp16 copy (weights and
activations fp16, input and output kept fp32, through ONNX Runtime's float16 converter).
A file that is already in the asked precision (an engine's own Q/DQ or fp16 model) is
measured as it is: precision lives in the model file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ..base import MissingRuntime, ProfilerError

_QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
              "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")
FLOAT16 = 10  # TensorProto.FLOAT16


def fixed_input(shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
    """Deterministic input of ``shape`` (values do not change the latency of dense ops)."""
    return np.random.default_rng(0).standard_normal(tuple(int(d) for d in shape)).astype(dtype)


def _load_onnx(path: Path):
    try:
        import onnx
    except ImportError as exc:
        raise MissingRuntime(f"reading the precision of {path.name} needs the onnx package "
                             f"({exc}); install it with: pip install onnx") from None
    return onnx.load(str(path), load_external_data=False)


def onnx_precision(path: "str | Path") -> str:
    """``int8`` for a quantized graph, ``fp16`` for a float16 one, else ``fp32``."""
    model = _load_onnx(Path(path))
    ops = {n.op_type for n in model.graph.node}
    if ops & set(_QUANT_OPS):
        return "int8"
    if any(t.data_type == FLOAT16 for t in model.graph.initializer):
        return "fp16"
    return "fp32"


def inline_initializer_identities(model) -> int:
    """Replace ``Identity`` nodes that alias an initializer by a copy of it, in place.

    ``torch.onnx.export`` deduplicates equal initializers and re-creates the duplicates as
    ``Identity`` nodes. Networks with fresh weights (the bundle's blocks and calibration
    networks: every folded BN bias is zero) are full of them, and ONNX Runtime's static
    quantizer then leaves those convolutions' biases unquantized ("Expected bias ... to be
    an initializer"), so the Q/DQ graph does not fuse to QLinearConv and measures far
    slower than the same network with trained weights. Returns the number inlined.
    """
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


def quantizable_copy(onnx_path: Path, tmp: Path) -> Path:
    """``onnx_path``, or a copy at ``tmp`` with initializer aliases inlined (see above)."""
    import onnx

    model = onnx.load(str(onnx_path))
    if not inline_initializer_identities(model):
        return Path(onnx_path)
    onnx.save(model, str(tmp))
    return tmp


def _cached(onnx_path: Path, tag: str, extra: str = "", suffix: str = ".onnx") -> Path:
    """Where the converted copy of ``onnx_path`` lives (keyed by content), in the user's
    private cache, not a fixed /tmp folder; written through ``fileformat.atomic_path``."""
    data = Path(onnx_path).read_bytes()
    digest = hashlib.sha256(data + extra.encode()).hexdigest()[:16]
    from ..fileformat import cache_root

    return cache_root("converted") / f"{Path(onnx_path).stem}-{digest}.{tag}{suffix}"


def qdq_model(onnx_path: Path, input_shape: Sequence[int]) -> Path:
    """An int8 Q/DQ copy of ``onnx_path`` (static quantization, per-channel symmetric
    weights), calibrated on a few deterministic inputs; cached by content hash. A model
    that is already quantized is returned as it is."""
    if onnx_precision(onnx_path) == "int8":
        return Path(onnx_path)
    try:
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError as exc:
        raise MissingRuntime(f"int8 needs onnxruntime.quantization to make Q/DQ models "
                             f"({exc}); install it with: pip install 'hwnas[onnxruntime]' onnx") from None
    out = _cached(onnx_path, "qdq2", repr(tuple(input_shape)))
    if out.is_file():
        return out

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self._it = iter([{"input": rng.standard_normal(tuple(input_shape)).astype("float32")}
                             for _ in range(4)])

        def get_next(self):
            return next(self._it, None)

    import logging

    from ..fileformat import atomic_path

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's pre-processing advice, once per block
    try:
        with atomic_path(out) as tmp:
            src_tmp = tmp.with_name(tmp.name + ".src.onnx")
            try:
                src = quantizable_copy(Path(onnx_path), src_tmp)
                quantize_static(str(src), str(tmp), _Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QInt8,
                                weight_type=QuantType.QInt8)
            finally:
                src_tmp.unlink(missing_ok=True)
    finally:
        root.setLevel(level)
    return out


def fp16_model(onnx_path: Path) -> Path:
    """A float16 copy of ``onnx_path`` (input and output stay float32); cached. A model
    that already holds float16 weights is returned as it is."""
    if onnx_precision(onnx_path) != "fp32":
        return Path(onnx_path)
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise MissingRuntime(f"fp16 needs onnx and onnxruntime's float16 converter ({exc}); "
                             "install them with: pip install 'hwnas[onnxruntime]' onnx") from None
    out = _cached(onnx_path, "fp16b")
    if out.is_file():
        return out
    from ..fileformat import atomic_path

    model = onnx.load(str(onnx_path))
    inline_initializer_identities(model)  # as for int8: aliases would stay fp32
    model = convert_float_to_float16(model, keep_io_types=True)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return out


def in_precision(path: Path, precision: str, input_shape: Sequence[int] | None) -> Path:
    """``path`` as a model file of ``precision`` (the identity graph is measured as is)."""
    if path.suffix.lower() != ".onnx" or path.name.startswith("identity") or precision == "fp32":
        return path
    if precision == "int8":
        if input_shape is None and onnx_precision(path) != "int8":
            raise ProfilerError(f"an int8 copy of {path.name} needs its input shape")
        return qdq_model(path, input_shape or ())
    return fp16_model(path)
