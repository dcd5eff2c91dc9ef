"""LiteRT engines (``model.tflite``) and LiteRT block files, converted on the host.

The one recipe both sides use: :func:`convert_module` turns a PyTorch module into a
``.tflite`` file with ``litert-torch`` (``litert_torch.convert(module, (x,)).export``), and
the block bundle (``hwnas blocks export --backend litert``) and the ``litert`` engine both
call it, so a table measures the graph an engine runs.

- **Layout.** The file takes NHWC input (``litert_torch.to_channel_last_io``), the layout
  TFLite kernels and camera pipelines use: the converter then has no transpose to insert
  at the input, and a block's 4-D output is NHWC too, so blocks chain as they do inside a
  network. An engine's manifest says ``input_layout: NHWC``; the parity check and
  :class:`LiteRtEmitter`'s session take NCHW and transpose, like every hwnas session.
- **int8.** Post-training quantization by litert-torch's own PT2E flow, the maintained
  path its documentation gives (``litert_torch.quantize.pt2e_quantizer.PT2EQuantizer``
  with ``get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)``,
  torchao's ``prepare_pt2e`` / ``convert_pt2e``, then ``convert(...,
  quant_config=QuantConfig(pt2e_quantizer=...))``): int8 symmetric per-channel weights,
  static int8 activations calibrated on given images. The converter folds the boundary
  quantize/dequantize into the model, so an int8 file takes and returns int8 tensors: the
  manifest gives the input's scale and zero point. Quantization-aware fine-tuning is not
  offered for LiteRT (``--qat`` is refused).

Converting needs ``litert-torch`` (``pip install 'hwnas[litert]'``); running needs only
``ai-edge-litert``, which is what the device installs (``hwnas[litert-device]``).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import MissingDependency
from .base import EngineError, Emitter, ModelFiles, Session

INPUT_LAYOUT = "NHWC"
INT8_METHOD = ("post-training quantization by litert-torch's PT2E flow (PT2EQuantizer, "
               "symmetric per-channel int8 weights, static int8 activations)")


def require_converter() -> Any:
    """``litert_torch``, or one line naming the extra (the host converts, the device runs)."""
    try:
        with _quiet():
            import litert_torch
    except ImportError as exc:
        raise MissingDependency(f"converting to LiteRT needs litert-torch, which is not "
                                f"installed ({exc.__class__.__name__}: {exc}); install it on "
                                "the host with: pip install 'hwnas[litert]'") from None
    return litert_torch


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """litert-torch draws a progress tree on stdout and its converter logs from C++ to the
    process's stderr: both are kept out of hwnas's output (and out of ``--json``); the
    captured text is what a failure quotes."""
    import sys

    buf = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield buf
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _channel_last(torch: Any, module: Any, x: Any, litert_torch: Any) -> Any:
    """``module`` behind NHWC input (and NHWC output when the output has 4 dimensions)."""
    with torch.no_grad():
        out4 = module(x).ndim == 4
    return litert_torch.to_channel_last_io(module, args=[0], outputs=[0] if out4 else []).eval()


def _quantized(torch: Any, module: Any, xn: Any, calibration: np.ndarray) -> tuple[Any, Any]:
    """(the PT2E int8 module, its quantizer), calibrated on ``calibration`` (NHWC rows)."""
    from litert_torch.quantize.pt2e_quantizer import (PT2EQuantizer,
                                                      get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(torch.export.export(module, (xn,)).module(), quantizer)
    with torch.no_grad():
        for row in calibration:
            prepared(torch.from_numpy(np.ascontiguousarray(row[None], np.float32)))
    return convert_pt2e(prepared, fold_quantize=False), quantizer


def convert_module(module: Any, input_shape: tuple[int, ...], path: "str | Path",
                   precision: str = "fp32", calibration: "np.ndarray | None" = None) -> Path:
    """Write ``module`` (eval, NCHW float input of ``input_shape``) as a ``.tflite`` file
    taking NHWC input; int8 is calibrated on ``calibration`` (NCHW images, one per row;
    random ones when None). Written atomically."""
    import torch

    from hwnas_profilers.fileformat import atomic_path

    if precision not in ("fp32", "int8"):
        raise EngineError(f"LiteRT files are fp32 or int8 here, not {precision}")
    litert_torch = require_converter()
    x = torch.zeros(tuple(input_shape))
    module = _channel_last(torch, module.eval(), x, litert_torch)
    xn = x.permute(0, 2, 3, 1).contiguous()
    with _quiet() as log:
        try:
            if precision == "fp32":
                model = litert_torch.convert(module, (xn,))
            else:
                if calibration is None:
                    calibration = np.random.default_rng(1).standard_normal(
                        (4, *input_shape[1:])).astype(np.float32)
                nhwc = np.ascontiguousarray(np.asarray(calibration, np.float32)
                                            .transpose(0, 2, 3, 1))
                qmod, quantizer = _quantized(torch, module, xn, nhwc)
                from litert_torch.quantize.quant_config import QuantConfig

                model = litert_torch.convert(qmod, (xn,),
                                             quant_config=QuantConfig(pt2e_quantizer=quantizer))
            with atomic_path(Path(path)) as tmp:
                model.export(str(tmp))
        except Exception as exc:  # noqa: BLE001 - the converter's own error, in one line
            tail = " ".join(log.getvalue().split())[-200:]
            raise EngineError(f"litert-torch could not convert to {precision} .tflite: "
                              f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:300]}"
                              + (f" (log: {tail})" if tail else "")) from None
    return Path(path)


def bundle_file(stem: str, precision: str) -> str:
    """The bundle file of ``stem`` in ``precision`` (``stem.tflite``, ``stem.int8.tflite``),
    by the profiler's naming rule (:func:`hwnas_profilers.backends.litert.precision_file`)."""
    from hwnas_profilers.backends.litert import precision_file

    return precision_file(f"{stem}.tflite", precision).as_posix()


def write_bundle_files(make_module: Callable[[], Any], input_shape: Sequence[int], out: Path,
                       stem: str, precisions: Sequence[str]) -> dict[str, str]:
    """A block bundle's files of one module (:func:`bundle_file`), converted by
    :func:`convert_module`; int8 calibrated on four fixed random inputs, as the ONNX
    bundles' int8 copies are. Present files are kept."""
    from ..bundle import precision_files

    return precision_files(make_module, out, lambda p: Path(bundle_file(stem, p)),
                           lambda m, path, p: convert_module(m, tuple(input_shape), path, p),
                           precisions)


def io_details(path: Path) -> dict[str, Any]:
    """The input a caller must feed and the output it gets (dtype, NHWC shape, and the
    int8 scale and zero point: real = (q - zero_point) * scale)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    d_in, d_out = it.get_input_details()[0], it.get_output_details()[0]

    def one(d: dict) -> dict[str, Any]:
        r: dict[str, Any] = {"shape": [int(v) for v in d["shape"]],
                             "dtype": np.dtype(d["dtype"]).name}
        if r["dtype"] != "float32":
            r["scale"], r["zero_point"] = float(d["quantization"][0]), int(d["quantization"][1])
        return r

    return {"input": one(d_in), "output": one(d_out)}


def _input_steps(inp: dict[str, Any]) -> dict[str, Any]:
    """How the engine's input differs from the NCHW float32 preprocessing: NHWC, and for an
    int8 file the quantization of the normalised image."""
    d: dict[str, Any] = {"layout": f"{INPUT_LAYOUT} {inp['dtype']}, batch 1",
                         "input_shape": inp["shape"], "input_layout": INPUT_LAYOUT,
                         "transpose": "NCHW (0, 1, 2, 3) -> NHWC (0, 2, 3, 1), after normalising"}
    if inp["dtype"] != "float32":
        d["quantize"] = {"scale": inp["scale"], "zero_point": inp["zero_point"],
                         "formula": f"q = clip(round(x / scale) + zero_point) as {inp['dtype']}, "
                                    "after normalising and transposing"}
    return d


@dataclass
class LiteRtEmitter(Emitter):
    name = "litert"
    extra = "litert"
    suffix = ".tflite"
    profiler = "litert"
    quantizes_module = True  # litert-torch's PT2E flow, from the module
    offers_qat = False

    def check(self) -> None:
        try:
            from ai_edge_litert import interpreter
        except ImportError as exc:
            raise self.missing("ai-edge-litert", exc) from None
        self._interp = interpreter
        require_converter()

    def runtime(self) -> dict[str, Any]:
        from importlib import metadata

        return {"runtime": "litert", "version": metadata.version("ai-edge-litert"),
                "converter": f"litert-torch {metadata.version('litert-torch')}",
                "delegate": "XNNPACK (the interpreter's default delegate)",
                "num_threads": max(self.threads, 1)}

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        target = out_dir / "model.tflite"
        convert_module(files.module, files.input_shape, target, self.precision,
                       files.calibration if self.precision == "int8" else None)
        io_ = io_details(target)
        info: dict[str, Any] = {
            "file": target.name, "files": [target.name],
            "source": "litert-torch conversion of the fine-tuned module (BN folded)",
            "input_layout": INPUT_LAYOUT, "input_shape": io_["input"]["shape"],
            "input_dtype": io_["input"]["dtype"], "io": io_,
            "output": f"logits {io_['output']['shape']} {io_['output']['dtype']}",
            "load": {"call": "ai_edge_litert.interpreter.Interpreter(model_path="
                             f"'model.tflite', num_threads={max(self.threads, 1)})",
                     "delegate": "XNNPACK, applied by the interpreter itself"}}
        info["preprocessing"] = _input_steps(io_["input"])
        if self.precision == "int8":
            info["quantization"] = {"method": INT8_METHOD,
                                    "calibration_images": int(len(files.calibration))}
        return info

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        from hwnas_profilers.backends.litert import quantized_input

        it = self._interp.Interpreter(model_path=str(engine), num_threads=max(self.threads, 1))
        it.allocate_tensors()
        d_in, d_out = it.get_input_details()[0], it.get_output_details()[0]

        def run(x: np.ndarray) -> np.ndarray:
            nhwc = np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 2, 3, 1))
            it.set_tensor(d_in["index"], quantized_input(d_in, nhwc))
            it.invoke()
            y = it.get_tensor(d_out["index"])
            if np.dtype(d_out["dtype"]) != np.float32:
                scale, zero = d_out["quantization"]
                y = (y.astype(np.float32) - zero) * scale
            return np.asarray(y, np.float32)

        return run
