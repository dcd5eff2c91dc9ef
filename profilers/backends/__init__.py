"""Built-in backends, one module per runtime; each imports its runtime only inside itself.

Shared by several backends: the input tensor every runner binds, and Q/DQ quantization of
an ONNX file for int8 runs (through ``onnxruntime.quantization``, so int8 needs the
``onnxruntime`` extra whatever the backend).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..base import MissingRuntime

_QDQ_CACHE = Path(tempfile.gettempdir()) / "hwnas-profilers-qdq"


def fixed_input(shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
    """Deterministic input of ``shape`` (values do not change the latency of dense ops)."""
    return np.random.default_rng(0).standard_normal(tuple(int(d) for d in shape)).astype(dtype)


def qdq_model(onnx_path: Path, input_shape: Sequence[int]) -> Path:
    """An int8 Q/DQ copy of ``onnx_path`` (static quantization, per-channel weights),
    calibrated on a few deterministic inputs; cached by content hash."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError as exc:
        raise MissingRuntime(f"int8 needs onnxruntime.quantization to make Q/DQ models "
                             f"({exc}); install it with: pip install 'hwnas[onnxruntime]' onnx") from None
    data = Path(onnx_path).read_bytes()
    digest = hashlib.sha256(data + repr(tuple(input_shape)).encode()).hexdigest()[:16]
    _QDQ_CACHE.mkdir(parents=True, exist_ok=True)
    out = _QDQ_CACHE / f"{Path(onnx_path).stem}-{digest}.qdq.onnx"
    if out.is_file():
        return out

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self._it = iter([{"input": rng.standard_normal(tuple(input_shape)).astype("float32")}
                             for _ in range(4)])

        def get_next(self):
            return next(self._it, None)

    tmp = out.with_name(f".{out.name}.{np.random.default_rng().integers(1 << 30)}.tmp")
    quantize_static(str(onnx_path), str(tmp), _Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    tmp.replace(out)
    return out
