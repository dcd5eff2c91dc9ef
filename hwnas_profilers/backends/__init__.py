"""Built-in backends, one module per runtime; each imports its runtime only inside itself.

Shared by several backends: the input tensor every runner binds, and the precision copies
of a block's fp32 ONNX file that a bundle does not hold, an int8 Q/DQ copy and an fp16
copy, both made by :mod:`hwnas_profilers.convert`, the recipe the engines use too.
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


def converter(tag: str, extra: str = "") -> str:
    """The converter's identity: the recipe's tag, its options and the versions of the
    libraries that make the copy (a copy made by another version is made again)."""
    from importlib.metadata import PackageNotFoundError, version

    libs = []
    for pkg in ("onnx", "onnxruntime"):
        try:
            libs.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            libs.append(f"{pkg} absent")
    return " ".join([tag, extra, *libs])


def _cached(onnx_path: Path, tag: str, extra: str = "", suffix: str = ".onnx") -> Path:
    """Where the converted copy of ``onnx_path`` lives, keyed by the sha256 of the source
    and the converter (:func:`converter`), in the user's private cache
    (:mod:`hwnas_profilers.cachedir`); written through ``fileformat.atomic_path`` and
    reused only when :func:`fresh` says its seal holds."""
    from ..cachedir import sha256_file
    from ..fileformat import cache_root

    key = f"{sha256_file(onnx_path)} {converter(tag, extra)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root("converted") / f"{Path(onnx_path).stem}-{digest}.{tag}{suffix}"


def fresh(out: Path, onnx_path: Path, tag: str, extra: str = "") -> bool:
    """True when the cached copy ``out`` was made by this converter from exactly this
    source; a corrupt or foreign entry is removed (and made again by the caller)."""
    from ..cachedir import sealed, sha256_file

    return sealed(out, sha256_file(onnx_path), converter(tag, extra))


def seal(out: Path, onnx_path: Path, tag: str, extra: str = "") -> Path:
    """Record beside a copy just made what it was made from (see :func:`fresh`)."""
    from ..cachedir import seal as _seal
    from ..cachedir import sha256_file

    _seal(out, sha256_file(onnx_path), converter(tag, extra))
    return out


def qdq_model(onnx_path: Path, input_shape: Sequence[int]) -> Path:
    """An int8 Q/DQ copy of ``onnx_path`` by :func:`hwnas_profilers.convert.to_qdq_int8`
    (the engines' recipe), calibrated on a few deterministic inputs; cached by content
    hash. A model that is already quantized is returned as it is."""
    if onnx_precision(onnx_path) == "int8":
        return Path(onnx_path)
    from ..convert import random_calibration, to_qdq_int8
    from ..fileformat import atomic_path

    # the cache tag names the recipe's version: a copy made by an older recipe is not reused
    shape = repr(tuple(input_shape))
    out = _cached(onnx_path, "qdq3", shape)
    if fresh(out, onnx_path, "qdq3", shape):
        return out
    with atomic_path(out) as tmp:
        to_qdq_int8(onnx_path, tmp, random_calibration(input_shape))
    return seal(out, onnx_path, "qdq3", shape)


def fp16_model(onnx_path: Path) -> Path:
    """A float16 copy of ``onnx_path`` by :func:`hwnas_profilers.convert.to_fp16` (input
    and output stay float32); cached. A model that already holds float16 weights is
    returned as it is."""
    if onnx_precision(onnx_path) != "fp32":
        return Path(onnx_path)
    from ..convert import to_fp16
    from ..fileformat import atomic_path

    out = _cached(onnx_path, "fp16c")
    if fresh(out, onnx_path, "fp16c"):
        return out
    with atomic_path(out) as tmp:
        to_fp16(onnx_path, tmp)
    return seal(out, onnx_path, "fp16c")


def in_precision(path: Path, precision: str, input_shape: Sequence[int] | None) -> Path:
    """``path`` as a model file of ``precision`` (the identity graph is measured as is)."""
    if path.suffix.lower() != ".onnx" or path.name.startswith("identity") or precision == "fp32":
        return path
    if precision == "int8":
        if input_shape is None and onnx_precision(path) != "int8":
            raise ProfilerError(f"an int8 copy of {path.name} needs its input shape")
        return qdq_model(path, input_shape or ())
    return fp16_model(path)
