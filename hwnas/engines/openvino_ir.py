"""OpenVINO engine: an IR (``model.xml`` + ``model.bin``) from ``openvino.convert_model``.

fp32 and int8 IRs keep fp32 weights (``save_model(compress_to_fp16=False)``), so the fp32
engine matches PyTorch to float rounding; int8 comes from the Q/DQ ONNX (converted to
FakeQuantize, executed in int8), or, with ``ptq="nncf"``, from NNCF post-training
quantization of the IR itself. fp16 stores fp16 weights and is built only for a device
that executes f16 (``OPTIMIZATION_CAPABILITIES`` lists FP16): elsewhere it would run in
f32 and be an fp16 engine in name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import EngineError, Emitter, ModelFiles, Session


@dataclass
class OpenVinoEmitter(Emitter):
    name = "openvino"
    extra = "openvino"
    suffix = ".xml"
    profiler = "openvino"

    @property
    def ov_device(self) -> str:
        """OpenVINO's name of the device (``GPU.1`` for ``gpu:1``), as its profiler names it."""
        from hwnas_profilers.backends.openvino import ov_device_name

        return ov_device_name(self.device)

    def check(self) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise self.missing("openvino", exc) from None
        self._ov, self._core = ov, ov.Core()
        dev = self.ov_device
        if dev not in self._core.available_devices:
            raise EngineError(f"openvino: device {dev} is not available here "
                              f"(available: {', '.join(self._core.available_devices)})")
        caps = [str(c) for c in self._core.get_property(dev, "OPTIMIZATION_CAPABILITIES")]
        if self.precision == "fp16" and "FP16" not in caps:
            raise EngineError(f"openvino {dev} here does not execute fp16 (capabilities: "
                              f"{', '.join(caps)}); an fp16 IR would run in f32. Use fp32 or int8")

    def runtime(self) -> dict[str, Any]:
        dev = self.ov_device
        return {"runtime": "openvino", "version": self._ov.get_version(), "ov_device": dev,
                "full_device_name": str(self._core.get_property(dev, "FULL_DEVICE_NAME")),
                "weights": "fp16 (compressed)" if self.precision == "fp16" else "fp32 (not compressed)"}

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        ov = self._ov
        ptq = self.options.get("ptq", "onnxruntime")
        src = files.fp32_onnx if (self.precision == "int8" and ptq == "nncf") else files.onnx
        try:
            model = ov.convert_model(str(src))
            if self.precision == "int8" and ptq == "nncf":
                model = self._nncf_quantize(model, files)
            for key, value in files.metadata.items():  # read back: model.get_rt_info()
                model.set_rt_info(value, ["hwnas", key.removeprefix("hwnas.")])
            for key, value in self.load_config().items():
                model.set_rt_info(value, ["runtime_options", key])
            ov.save_model(model, str(out_dir / "model.xml"),
                          compress_to_fp16=self.precision == "fp16")
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.failed(f"convert {src.name} to IR", exc) from None
        return {"file": "model.xml", "files": ["model.xml", "model.bin"], "source": src.name,
                "int8_from": (("nncf post-training quantization of the IR" if ptq == "nncf"
                               else "the Q/DQ ONNX") if self.precision == "int8" else None),
                "load": self.load_call(), "default_load": self._default_load(
                    out_dir / "model.xml", files.calibration)}

    def load_config(self) -> dict[str, str]:
        """The compile settings every figure of the manifest was measured with."""
        cfg = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
               "INFERENCE_PRECISION_HINT": "f16" if self.precision == "fp16" else "f32"}
        if self.ov_device == "CPU":
            cfg["INFERENCE_NUM_THREADS"] = str(max(self.threads, 1))
        return cfg

    def load_call(self) -> dict[str, Any]:
        """How to load the engine so it runs as measured. The settings are also stored in the
        IR's ``rt_info`` ``runtime_options``, but OpenVINO's CPU plugin applies from there
        only its KV-cache and dynamic-quantization options: the execution precision must be
        passed to ``compile_model``, or a CPU with BF16 runs the fp32 IR in bf16."""
        cfg = self.load_config()
        return {"call": f"openvino.Core().compile_model('model.xml', "
                        f"'{self.ov_device}', config)",
                "config": cfg, "also_in": "model.xml rt_info runtime_options"}

    def _default_load(self, xml: Path, images: np.ndarray) -> dict[str, Any]:
        """What ``compile_model(xml, device)`` with no settings does here, against the
        measured settings on the same images: a user who loads the engine plainly is told
        whether it runs what the manifest measured."""
        dev = self.ov_device
        x = np.ascontiguousarray(images[:32], np.float32)
        plain = self._core.compile_model(str(xml), dev)
        tuned = self._core.compile_model(str(xml), dev, self.load_config())
        a = np.concatenate([np.asarray(tuned({0: x[i:i + 1]})[0]).reshape(1, -1)
                            for i in range(len(x))])
        b = np.concatenate([np.asarray(plain({0: x[i:i + 1]})[0]).reshape(1, -1)
                            for i in range(len(x))])
        prec = str(plain.get_property("INFERENCE_PRECISION_HINT")).lower()
        prec = {"<type: 'bfloat16'>": "bf16", "<type: 'float32'>": "f32",
                "<type: 'float16'>": "f16"}.get(prec, prec)
        same = prec == self.load_config()["INFERENCE_PRECISION_HINT"]
        return {"inference_precision": prec, "images": int(len(x)),
                "max_abs_diff_vs_measured_load": float(np.max(np.abs(a - b))),
                "top1_agreement_vs_measured_load": float(np.mean(a.argmax(1) == b.argmax(1))),
                "runs_as_measured": bool(same),
                "note": None if same else (
                    f"compile_model without settings runs this engine in {prec} on this "
                    f"{dev}, not as measured: pass the config in 'load'")}

    def _nncf_quantize(self, model: Any, files: ModelFiles) -> Any:
        calib = files.calibration
        try:
            import nncf
        except ImportError as exc:
            raise self.missing("nncf", exc) from None
        from .quantize import nncf_output

        ds = nncf.Dataset([np.ascontiguousarray(x[None], np.float32) for x in calib])
        with nncf_output():
            return nncf.quantize(model, ds, subset_size=len(calib),
                                 preset=nncf.QuantizationPreset.PERFORMANCE)

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        compiled = self._core.compile_model(str(engine), self.ov_device, self.load_config())
        req = compiled.create_infer_request()

        def run(x: np.ndarray) -> np.ndarray:
            req.infer({0: np.ascontiguousarray(x, np.float32)})
            return np.array(req.get_output_tensor(0).data)

        return run
