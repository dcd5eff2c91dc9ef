"""TensorRT engine: a serialized plan built on the local GPU from the precision-typed ONNX.

The network is strongly typed (``STRONGLY_TYPED`` on TensorRT 10; always on 11, which
removed ``BuilderFlag.FP16``/``INT8``): fp16 comes from the float16 ONNX, int8 from the
Q/DQ ONNX (explicit quantization). The timing cache lives in hwnas's cache folder, one
per GPU model and TensorRT version, so every later build on this machine reuses the
kernel timings; a copy is written beside the plan. A plan runs only on the GPU model and TensorRT
version that built it; the manifest records both. Without tensorrt or without a GPU the
emitter stops in ``check``, before any work and without writing anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import EngineError, Emitter, ModelFiles, Session


@dataclass
class TensorRTEmitter(Emitter):
    name = "tensorrt"
    extra = "tensorrt"
    suffix = ".plan"
    profiler = "tensorrt"
    untested = ("the TensorRT path is untested on hardware: it has never run on an NVIDIA "
                "GPU, so treat its engines and figures as unverified")

    def check(self) -> None:
        from hwnas_profilers import ProfilerError, Settings

        try:
            import tensorrt  # noqa: F401
        except ImportError as exc:
            raise self.missing("tensorrt", exc) from None
        from hwnas_profilers.backends.tensorrt import TensorRTProfiler

        try:
            self._prof = TensorRTProfiler(Settings(device=self.device.lower(), precision=self.precision))
        except ProfilerError as exc:
            raise EngineError(str(exc)) from None

    def runtime(self) -> dict[str, Any]:
        from hwnas_profilers.fingerprint import fingerprint

        gpus = fingerprint().get("gpus") or [{}]
        return {"runtime": "tensorrt", "version": self._prof._trt.__version__,
                "gpu": gpus[0].get("name", "unknown"),
                "tied_to": "this GPU model and this TensorRT version: rebuild the plan elsewhere"}

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        from hwnas_profilers import ProfilerError
        from hwnas_profilers.backends.tensorrt import build_plan

        from ..profiling import cache_dir

        rt = self.runtime()
        tag = "".join(c if c.isalnum() else "_" for c in f"{rt['gpu']}_{rt['version']}")
        cache_path = cache_dir() / "tensorrt" / f"{tag}.timing"
        old = cache_path.read_bytes() if cache_path.is_file() else None
        try:
            plan, cache = build_plan(self._prof._trt, self._prof._logger, files.onnx, old)
        except ProfilerError as exc:
            raise EngineError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise self.failed(f"build a plan from {files.onnx.name}", exc) from None
        (out_dir / "model.plan").write_bytes(plan)
        (out_dir / "timing.cache").write_bytes(cache)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(cache)
        os.replace(tmp, cache_path)  # a reader sees the old cache or the new one
        return {"file": "model.plan", "files": ["model.plan", "timing.cache"],
                "source": files.onnx.name, "strongly_typed": True}

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        runner = self._prof.load(engine, input_shape)
        return runner.infer  # type: ignore[attr-defined]
