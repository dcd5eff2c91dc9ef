"""ONNX Runtime: CPU execution provider; CUDA and TensorRT providers when present.

Sessions run sequentially (``ORT_SEQUENTIAL``), with a fixed intra-op thread count, one
inter-op thread and thread spinning off (``session.intra_op.allow_spinning=0``), so a
measurement does not depend on idle threads burning the cores. GPU sessions bind input
and output on the device (I/O binding) and ORT synchronises the stream at the end of each
run, so the host timer around ``run_with_iobinding`` covers the GPU work.

Precisions live in the model file: fp32 as exported; fp16 from a float16 copy of the block
(ONNX Runtime's converter, fp32 input and output); int8 from a Q/DQ copy. A model that is
already fp16 or Q/DQ (an engine file) is run as it is. The CPU provider runs fp16 models
through its own cast insertion where it lacks float16 kernels: that cost is measured, not
hidden. The TensorRT EP builds strongly typed from the same files (no fp16/int8 flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..base import Profiler, ProfilerError, Runner, cuda_device_count
from . import fixed_input, in_precision

# the execution provider of each device kind (its precisions: hwnas_profilers.runtimes);
# the ONNX Runtime engine emitter reads it too
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


def provider(kind: str, index: int = 0) -> "str | tuple[str, dict[str, int]]":
    """The execution provider of a device kind, on GPU number ``index`` off the CPU."""
    return PROVIDERS[kind] if kind == "cpu" else (PROVIDERS[kind], {"device_id": index})


class _OrtRunner(Runner):
    def __init__(self, session: Any, feed: dict, binding: Any = None) -> None:
        import time

        self._s, self._feed, self._b, self._clock = session, feed, binding, time.perf_counter_ns

    def time_ms(self) -> float:
        t0 = self._clock()
        if self._b is not None:
            self._s.run_with_iobinding(self._b)
        else:
            self._s.run(None, self._feed)
        return (self._clock() - t0) / 1e6


@dataclass
class OnnxRuntimeProfiler(Profiler):
    name = "onnxruntime"
    extra = "onnxruntime"

    def check(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise self.missing("onnxruntime", exc) from None
        self._ort = ort
        dev = self.settings.device_kind
        if dev not in PROVIDERS:
            raise ProfilerError(f"onnxruntime: unknown device {self.settings.device!r}; "
                                f"known: {', '.join(PROVIDERS)}")
        if dev not in self.devices():
            raise self.unsupported(f"device {dev!r} ({PROVIDERS[dev]} is not available in "
                                   f"this onnxruntime build; install onnxruntime-gpu for CUDA/TensorRT)")
        self.check_precision()
        n = cuda_device_count() if dev != "cpu" else None
        if n is not None and self.settings.device_index >= n:
            # onnxruntime would fail only at the first session, with a CUDA error
            raise self.unsupported(f"device {self.settings.device} (this machine has {n} "
                                   "CUDA device(s), numbered from 0)")

    def runtime(self) -> dict[str, str]:
        return {"runtime": "onnxruntime", "version": self._ort.__version__,
                "provider": PROVIDERS[self.settings.device_kind]}

    def devices(self) -> list[str]:
        avail = set(self._ort.get_available_providers())
        return [d for d, p in PROVIDERS.items() if p in avail]

    def _options(self) -> Any:
        ort = self._ort
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = self.settings.n_threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3
        return so

    def _providers(self) -> list:
        dev = self.settings.device_kind
        # TensorRT: precision comes from the (fp16 or Q/DQ) graph itself
        return [provider(dev, self.settings.device_index)] + \
            ([] if dev == "cpu" else ["CPUExecutionProvider"])

    def load(self, onnx_path: Path, input_shape: Sequence[int] | None) -> Runner:
        path = Path(onnx_path)
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        ort = self._ort
        if input_shape is None:
            probe = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            input_shape = probe.get_inputs()[0].shape
            if not all(isinstance(d, int) for d in input_shape):
                raise ProfilerError(f"{path} has a dynamic input shape {input_shape}; give one")
        path = in_precision(path, self.settings.precision, input_shape)
        sess = ort.InferenceSession(str(path), sess_options=self._options(),
                                    providers=self._providers())
        used = sess.get_providers()[0]
        want = PROVIDERS[self.settings.device_kind]
        if used != want:
            raise ProfilerError(f"onnxruntime fell back to {used} instead of {want}")
        inp = sess.get_inputs()[0]
        x = fixed_input(input_shape)
        if self.settings.device_kind == "cpu":
            return _OrtRunner(sess, {inp.name: x})
        binding = sess.io_binding()
        binding.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(
            x, "cuda", self.settings.device_index))
        for o in sess.get_outputs():
            binding.bind_output(o.name, "cuda", self.settings.device_index)
        return _OrtRunner(sess, {}, binding)
