"""OpenVINO: CPU (and GPU / NPU device names when the plugins are present).

One compiled model per block, one synchronous infer request, the input bound once;
``infer(share_outputs=True)`` keeps the Python side from copying outputs, as the C++
``benchmark_app -api sync`` does not copy them either. Threads are explicit
(``INFERENCE_NUM_THREADS``), one stream, the LATENCY performance hint.

Precisions: fp32 pins ``INFERENCE_PRECISION_HINT=f32`` (OpenVINO would otherwise run bf16
on CPUs that have it); fp16 asks for f16 and is refused unless the compiled model reports
f16 execution; int8 runs a Q/DQ copy of the block, which OpenVINO executes in int8.
An IR (``.xml`` beside its ``.bin``) or an already quantized ONNX file (an engine) is
compiled as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..base import Profiler, ProfilerError, Runner, device_kind, device_number
from ..quiet import quiet_stderr
from . import fixed_input, in_precision


class _OvRunner(Runner):
    def __init__(self, request: Any) -> None:
        import time

        self._r, self._clock = request, time.perf_counter_ns

    def time_ms(self) -> float:
        t0 = self._clock()
        self._r.infer(share_outputs=True)
        return (self._clock() - t0) / 1e6


def ov_device_name(target: str) -> str:
    """OpenVINO's name of a device: ``GPU.1`` as given, or from the common ``gpu:1`` form
    (the OpenVINO engine emitter names its device with this too)."""
    if ":" in target:
        return f"{device_kind(target).upper()}.{device_number(target)}"
    return target.upper()


@dataclass
class OpenVinoProfiler(Profiler):
    name = "openvino"
    extra = "openvino"
    model_suffixes = (".onnx", ".xml")

    def check(self) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise self.missing("openvino", exc) from None
        self._ov = ov
        self._core = ov.Core()
        name, avail = self.device_name(), self._core.available_devices
        # GPU.1 must be listed as such: with one GPU, OpenVINO lists plain "GPU", and a
        # property query on "GPU.1" raises later (no GPU number 1 exists)
        if name not in avail and ("." in name or name.split(".")[0] not in avail):
            raise self.unsupported(f"device {self.settings.device!r} (available: "
                                   f"{', '.join(avail)})")
        self.check_precision()

    def device_name(self) -> str:
        return ov_device_name(self.settings.device)

    def runtime(self) -> dict[str, str]:
        return {"runtime": "openvino", "version": self._ov.get_version(),
                "ov_device": self.device_name(),
                "full_device_name": str(self._core.get_property(self.device_name(),
                                                                "FULL_DEVICE_NAME"))}

    def devices(self) -> list[str]:
        return [d.lower() for d in self._core.available_devices]

    def _config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if self.device_name().startswith("CPU"):
            cfg["INFERENCE_NUM_THREADS"] = str(self.settings.n_threads)
        prec = {"fp32": "f32", "fp16": "f16", "int8": "f32"}[self.settings.precision]
        cfg["INFERENCE_PRECISION_HINT"] = prec
        return cfg

    def load(self, onnx_path: Path, input_shape: Sequence[int] | None) -> Runner:
        path = Path(onnx_path)
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        with quiet_stderr():  # a frontend probing a foreign file quotes it on fd 2
            if self.settings.precision == "int8" and path.suffix.lower() == ".onnx":
                shape = input_shape or self._core.read_model(str(path)).inputs[0].get_shape()
                path = in_precision(path, "int8", list(shape))
            model = self._core.read_model(str(path))
        if input_shape is None:
            ps = model.inputs[0].get_partial_shape()
            if ps.is_dynamic:
                raise ProfilerError(f"{path} has a dynamic input shape {ps}; give one")
            input_shape = list(ps.to_shape())
        compiled = self._core.compile_model(model, self.device_name(), self._config())
        if self.settings.precision == "fp16":
            got = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
            if "f16" not in got:
                raise self.unsupported(f"fp16 on {self.device_name()} (it executes {got})")
        request = compiled.create_infer_request()
        request.set_input_tensor(self._ov.Tensor(fixed_input(input_shape)))
        return _OvRunner(request)
