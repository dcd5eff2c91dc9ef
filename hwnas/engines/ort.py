"""ONNX Runtime engine: the model as ONNX Runtime itself optimises and saves it.

The session is created with every graph optimisation on (``ORT_ENABLE_ALL``: constant
folding, node fusions, Q/DQ to QLinear fusion for int8, and the NCHWc layout of the CPU
provider) and ``optimized_model_filepath`` set, so the file is what ONNX Runtime would
run, saved once instead of re-optimised at every start. The layout transformations tie
the file to CPUs with the same instruction-set level; the manifest says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas_profilers.backends.onnxruntime import PROVIDERS, provider

from .base import Emitter, ModelFiles, Session


@dataclass
class OrtEmitter(Emitter):
    name = "onnxruntime"
    extra = "onnxruntime"
    suffix = ".onnx"
    profiler = "onnxruntime"
    # the profiler's devices but its TensorRT provider (the tensorrt emitter's business)
    device_kinds = ("cpu", "cuda")

    def check(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise self.missing("onnxruntime", exc) from None
        self._ort = ort
        want = PROVIDERS[self.device_kind]
        if want not in ort.get_available_providers():
            from .base import EngineError

            raise EngineError(f"onnxruntime here has no {want} (install onnxruntime-gpu for cuda)")

    def runtime(self) -> dict[str, Any]:
        return {"runtime": "onnxruntime", "version": self._ort.__version__,
                "provider": PROVIDERS[self.device_kind],
                "graph_optimization": "ORT_ENABLE_ALL (layout tied to this CPU's instruction set)"}

    def _options(self, save_to: Path | None = None) -> Any:
        so = self._ort.SessionOptions()
        so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = max(self.threads, 0)
        so.log_severity_level = 3
        if save_to is not None:
            so.optimized_model_filepath = str(save_to)
        return so

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        target = out_dir / "model.onnx"
        try:
            self._ort.InferenceSession(str(files.onnx), sess_options=self._options(target),
                                       providers=[provider(self.device_kind, self.device_index)])
        except Exception as exc:  # noqa: BLE001 - the runtime's own error, in one line
            raise self.failed(f"optimise {files.onnx.name}", exc) from None
        return {"file": target.name, "files": [target.name], "source": files.onnx.name}

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        sess = self._ort.InferenceSession(str(engine), sess_options=self._options(),
                                          providers=[provider(self.device_kind, self.device_index)])
        name = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]
