"""TensorRT: one engine per block, built from its ONNX file on the local GPU, timed with
CUDA events around ``execute_async_v3`` on a private stream.

Device memory and events come from the CUDA runtime library through ``ctypes`` (the
``tensorrt`` wheels bring ``libcudart``; no torch, no cuda-python needed). Without a GPU,
or without ``tensorrt``, the backend stops in ``check`` with a clear message: it never
returns a number it did not measure.

Precision lives in the model file: networks are built strongly typed (TensorRT 10 with the
``STRONGLY_TYPED`` creation flag, TensorRT 11 always), fp32 from the fp32 graph (TF32
disabled where the flag exists), fp16 from a float16 copy, int8 from a Q/DQ copy (explicit
quantization). No ``BuilderFlag.FP16``/``INT8``: TensorRT 11 removed them. A serialized
plan (``.plan``/``.engine``, an hwnas engine file) is deserialized and run as it is.
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..base import Profiler, ProfilerError, Runner, Unsupported
from . import fixed_input, in_precision


def _cudart() -> ctypes.CDLL:
    names = ["libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0"]
    try:
        import nvidia.cuda_runtime as _rt  # the wheel tensorrt-cu12 depends on

        names += glob.glob(os.path.join(list(_rt.__path__)[0], "lib", "libcudart.so*"))
    except ImportError:
        pass
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise Unsupported("tensorrt: the CUDA runtime (libcudart) was not found; is this a GPU machine?")


class _Cuda:
    def __init__(self, index: int = 0) -> None:
        self.lib = _cudart()
        n = ctypes.c_int(0)
        if self.lib.cudaGetDeviceCount(ctypes.byref(n)) != 0 or n.value < 1:
            raise Unsupported("tensorrt: no CUDA GPU is visible on this machine")
        if index >= n.value:
            raise Unsupported(f"tensorrt: device cuda:{index} does not exist here ({n.value} "
                              "CUDA device(s), numbered from 0)")
        self.index = index
        self.use()

    def use(self) -> None:
        """Make this GPU the calling thread's current one (CUDA keeps it per thread, and a
        fleet worker measures in a thread of its own)."""
        self.check(self.lib.cudaSetDevice(ctypes.c_int(self.index)), "cudaSetDevice")

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            raise RuntimeError(f"CUDA error {rc} in {what}")

    def malloc(self, nbytes: int) -> int:
        p = ctypes.c_void_p()
        self.check(self.lib.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(max(nbytes, 1))), "cudaMalloc")
        return int(p.value or 0)

    def upload(self, dst: int, arr: Any) -> None:
        self.check(self.lib.cudaMemcpy(ctypes.c_void_p(dst), arr.ctypes.data_as(ctypes.c_void_p),
                                       ctypes.c_size_t(arr.nbytes), 1), "cudaMemcpy")

    def download(self, arr: Any, src: int) -> None:
        self.check(self.lib.cudaMemcpy(arr.ctypes.data_as(ctypes.c_void_p), ctypes.c_void_p(src),
                                       ctypes.c_size_t(arr.nbytes), 2), "cudaMemcpy")

    def handle(self, fn: str) -> int:
        h = ctypes.c_void_p()
        self.check(getattr(self.lib, fn)(ctypes.byref(h)), fn)
        return int(h.value or 0)


class _TrtRunner(Runner):
    def __init__(self, cuda: _Cuda, context: Any, buffers: list[int], engine: Any,
                 io: dict[str, tuple[int, Any, bool]] | None = None) -> None:
        self._c, self._ctx, self._bufs, self._engine = cuda, context, buffers, engine
        self.io = io or {}  # name -> (device pointer, host array of its shape/dtype, is input)
        self._stream = cuda.handle("cudaStreamCreate")
        self._e0, self._e1 = cuda.handle("cudaEventCreate"), cuda.handle("cudaEventCreate")

    def time_ms(self) -> float:
        self._c.use()
        lib, s = self._c.lib, ctypes.c_void_p(self._stream)
        lib.cudaEventRecord(ctypes.c_void_p(self._e0), s)
        if not self._ctx.execute_async_v3(self._stream):
            raise RuntimeError("execute_async_v3 failed")
        lib.cudaEventRecord(ctypes.c_void_p(self._e1), s)
        self._c.check(lib.cudaEventSynchronize(ctypes.c_void_p(self._e1)), "cudaEventSynchronize")
        ms = ctypes.c_float()
        self._c.check(lib.cudaEventElapsedTime(ctypes.byref(ms), ctypes.c_void_p(self._e0),
                                               ctypes.c_void_p(self._e1)), "cudaEventElapsedTime")
        return float(ms.value)

    def infer(self, x: Any) -> Any:
        """Run on the host array ``x`` (the one input) and return the first output."""
        import numpy as np

        out = None
        for ptr, host, is_input in self.io.values():
            if is_input:
                self._c.upload(ptr, np.ascontiguousarray(x, dtype=host.dtype).reshape(host.shape))
        self.time_ms()
        for ptr, host, is_input in self.io.values():
            if not is_input and out is None:
                self._c.download(host, ptr)
                out = host.copy()
        return out

    def close(self) -> None:
        for p in self._bufs:
            self._c.lib.cudaFree(ctypes.c_void_p(p))
        self._bufs = []


def build_plan(trt: Any, logger: Any, onnx_path: Path, timing_cache: bytes | None = None
               ) -> tuple[bytes, bytes]:
    """A serialized plan from an ONNX file, strongly typed, and the updated timing cache."""
    builder = trt.Builder(logger)
    strong = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strong is None else 1 << int(strong))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ProfilerError(f"tensorrt cannot parse {onnx_path.name}: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    cache = config.create_timing_cache(timing_cache or b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ProfilerError(f"tensorrt could not build an engine for {onnx_path.name}")
    return bytes(plan), bytes(config.get_timing_cache().serialize())


@dataclass
class TensorRTProfiler(Profiler):
    name = "tensorrt"
    extra = "tensorrt"
    model_suffixes = (".onnx", ".plan", ".engine")

    def check(self) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise self.missing("tensorrt", exc) from None
        if self.settings.device_kind not in ("cuda", "gpu", "cpu"):
            raise ProfilerError(f"tensorrt: unknown device {self.settings.device!r}; use cuda "
                                "or cuda:N")
        if self.settings.device_kind == "cpu":
            raise Unsupported("tensorrt runs on an NVIDIA GPU only; use --device cuda on a GPU "
                              "machine (or the onnxruntime/openvino backends on a CPU)")
        self.check_precision()
        self._trt = trt
        self._cuda = _Cuda(self.settings.device_index)
        self._logger = trt.Logger(trt.Logger.ERROR)

    def runtime(self) -> dict[str, str]:
        return {"runtime": "tensorrt", "version": self._trt.__version__}

    def devices(self) -> list[str]:
        return ["cuda"]

    def timer(self) -> str:
        return "CUDA events around execute_async_v3 on a private stream"

    def load(self, onnx_path: Path, input_shape: Sequence[int] | None) -> Runner:
        trt = self._trt
        self._cuda.use()
        path = Path(onnx_path)
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        if path.suffix.lower() in (".plan", ".engine"):
            plan = path.read_bytes()
        else:
            path = in_precision(path, self.settings.precision, input_shape)
            plan, _ = build_plan(trt, self._logger, path)
        engine = trt.Runtime(self._logger).deserialize_cuda_engine(plan)
        if engine is None:
            raise ProfilerError(f"tensorrt cannot deserialize {path.name} (built for another GPU "
                                f"or TensorRT version than {trt.__version__}?)")
        context = engine.create_execution_context()
        buffers, io = [], {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ProfilerError(f"{path.name}: dynamic shape {shape} of {name}")
            arr = fixed_input(shape).astype(trt.nptype(engine.get_tensor_dtype(name)))
            ptr = self._cuda.malloc(int(arr.nbytes))
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                self._cuda.upload(ptr, arr)
            context.set_tensor_address(name, ptr)
            buffers.append(ptr)
            io[name] = (ptr, arr, is_input)
        return _TrtRunner(self._cuda, context, buffers, engine, io)
