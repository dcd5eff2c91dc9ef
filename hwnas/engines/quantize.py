"""The chosen network in a lower precision: fp16 and int8 ONNX files, and QAT.

- fp16: ONNX Runtime's float16 converter (weights and activations fp16, fp32 input and
  output), by :mod:`hwnas_profilers.convert` as for the profilers' fp16 blocks;
- int8 by post-training quantization: ONNX Runtime static quantization to Q/DQ with
  per-channel symmetric int8 weights and int8 activations calibrated on real training
  images, by :mod:`hwnas_profilers.convert`, the module the profilers convert int8 blocks
  with (so a table measures the graph an engine runs),
  or NNCF post-training quantization of the ONNX model;
- int8 by quantization-aware fine-tuning (``qat``): NNCF inserts fake quantizers
  (symmetric, per-channel int8 weights; initialised from calibration statistics) into the
  folded network (:mod:`hwnas.engines.finetune`), which is fine-tuned with them
  (ProxylessNAS's quantization-aware fine-tuning, Cai et al., ICCVW 2019, done with a
  maintained library instead of hand-written fake-quant).

  By default (``qat_export="nncf"``) the int8 file is NNCF's own trained quantizers as
  Q/DQ (``nncf.strip(..., StripFormat.NATIVE)``, needs torchao): it keeps the QAT accuracy
  (-0.18 points against fp32 on digits, where re-quantizing the QAT weights with ONNX
  Runtime's recipe lost 1.67). It places activation quantizers after Conv+Clip
  (OpenVINO's fusion pattern), which OpenVINO runs well but ONNX Runtime 4-6x slower than
  its own recipe (it fuses only some convolutions to QLinearConv); hence
  ``qat_export="requantize"`` (the QAT-adapted weights through the post-training recipe,
  calibrated on the same images) and ``hwnas run --quantization auto`` (PTQ on ONNX
  Runtime).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import require
from ..profiling import profiler_errors
from .base import EngineError

Say = Callable[[str], None]


def calibration_images(data: Any | None, input_shape: tuple[int, ...], n: int, seed: int
                 ) -> np.ndarray:
    """Up to ``n`` training images (NCHW, one per row); random ones only without data."""
    if data is not None:
        x = data.train_x.numpy()
        idx = np.random.default_rng(seed).permutation(len(x))[:n]
        return np.ascontiguousarray(x[idx], np.float32)
    return np.random.default_rng(seed).standard_normal((n, *input_shape[1:])).astype(np.float32)


def export_fp16(fp32: Path, path: Path) -> Path:
    """The fp16 ONNX file by the profilers' recipe (:func:`hwnas_profilers.convert.to_fp16`),
    so the graph an fp16 table measured block by block is the graph this engine runs."""
    from hwnas_profilers.convert import to_fp16

    with profiler_errors(EngineError):  # a missing converter: one line, exit 2
        return to_fp16(fp32, path)


def ptq_onnx(fp32: Path, path: Path, calib: np.ndarray, method: str = "onnxruntime") -> Path:
    """Q/DQ int8 ONNX by post-training quantization calibrated on ``calib``."""
    if method == "nncf":
        nncf = require("nncf", "nncf")
        onnx = require("onnx", "torch")
        model = onnx.load(str(fp32))
        name = model.graph.input[0].name
        ds = nncf.Dataset([{name: x[None]} for x in calib])
        with nncf_output():
            q = nncf.quantize(model, ds, subset_size=len(calib),
                              preset=nncf.QuantizationPreset.PERFORMANCE)
        onnx.save(q, str(path))
        return path
    if method != "onnxruntime":
        raise EngineError(f"unknown post-training quantizer {method!r}; use onnxruntime or nncf")
    from hwnas_profilers.convert import to_qdq_int8

    # the profilers' recipe, calibrated on the real images (one batch-1 input each)
    with profiler_errors(EngineError):  # a missing converter: one line, exit 2
        return to_qdq_int8(fp32, path, [x[None] for x in calib])


def qat(folded: Any, data: Any, steps: int, seed: int, calib: np.ndarray, say: Say,
        export_native: bool = False) -> tuple[Any, Any, Any]:
    """Quantization-aware fine-tuning with NNCF; returns (the float network carrying the
    QAT-adapted weights, the fake-quantized NNCF network, and with ``export_native`` that
    network with its quantizers as PyTorch fake-quantize ops, which export as Q/DQ)."""
    import copy

    # NNCF compiles its PyTorch CPU extension on first use and gives up after 60 s; on a
    # loaded 2-core machine the compile takes longer (QAT then fails), so the limit is
    # raised unless the user set one
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "900")
    nncf = require("nncf", "nncf")
    torch = require("torch", "torch")
    from nncf.quantization.advanced_parameters import (AdvancedQuantizationParameters,
                                                       OverflowFix)

    from ..train.loop import sgd, train_steps

    # NNCF's CPU default keeps weights in 7 bits against an old-CPU overflow ("half range");
    # a Q/DQ export needs the plain int8 range, which VNNI and GPUs execute exactly.
    adv = AdvancedQuantizationParameters(overflow_fix=OverflowFix.DISABLE)
    ds = nncf.Dataset([torch.from_numpy(calib[i:i + 16]) for i in range(0, len(calib), 16)])
    with warnings.catch_warnings(), nncf_output():
        warnings.simplefilter("ignore")
        qnet = nncf.quantize(copy.deepcopy(folded).eval(), ds, subset_size=len(calib),
                             preset=nncf.QuantizationPreset.PERFORMANCE,
                             advanced_parameters=adv, fast_bias_correction=True)
    say(f"QAT: {steps} fine-tuning steps with NNCF fake quantizers")
    train_steps(qnet, data.train_x, data.train_y, sgd(qnet.parameters(), 0.002, 0.0),
                lambda r: None, steps, 64, seed)
    qnet.eval()
    native = None
    if export_native:
        try:
            with warnings.catch_warnings(), nncf_output():
                warnings.simplefilter("ignore")
                native = nncf.strip(qnet, do_copy=True, strip_format=nncf.StripFormat.NATIVE,
                                    example_input=torch.from_numpy(calib[:1]))
        except ImportError as exc:
            raise EngineError(f"writing NNCF's QAT quantizers as Q/DQ needs torchao ({exc}); "
                              "install it with: pip install 'hwnas[nncf]'") from None
    adapted = copy.deepcopy(folded).eval()
    own = adapted.state_dict()
    trained = {k: v for k, v in qnet.state_dict().items() if k in own}
    if set(trained) != set(own):
        raise EngineError("QAT: NNCF's network lost parameters of the original "
                          f"({sorted(set(own) - set(trained))[:3]}...)")
    adapted.load_state_dict(trained)
    return adapted, qnet, native


def nncf_output():
    """NNCF draws its progress bars on stdout; keep stdout for ``--json`` (bars go to stderr)."""
    import contextlib
    import sys

    return contextlib.redirect_stdout(sys.stderr)


def quiet_nncf() -> None:
    """NNCF prints progress bars and INFO lines; hwnas reports its own progress."""
    import logging

    os.environ.setdefault("NNCF_TELEMETRY_DISABLE", "1")  # no network attempts either
    logging.getLogger("torchao").setLevel(logging.ERROR)  # optional CUDA kernels it lacks
    try:
        import nncf

        nncf.set_log_level(40)
    except ImportError:
        pass
