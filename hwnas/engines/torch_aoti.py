"""PyTorch AOTInductor engine: a ``.pt2`` package from ``torch.export`` + AOTInductor.

The package holds the compiled kernels (C++ on CPU, Triton/CUDA on GPU) and the weights;
deployment loads it with ``torch._inductor.aoti_load_package`` (or the C++
``AOTIModelPackageLoader``) without Python model code. fp16 (CUDA only) is the network in
half precision behind fp32 input and output casts, so every hwnas engine takes the same
input. int8 is not offered: PyTorch's int8 path for AOTInductor (torchao/PT2E with the
x86 Inductor quantizer) is a different quantization recipe from the Q/DQ model the other
engines share, and mixing them would make engines of one "int8" disagree.

Compiling a proxyless-mobile net takes about a minute (2 CPU cores) or more.

Reliability, measured: with torch 2.11.0+cu130 on an NVIDIA H200, ``aoti_load_package``
of *any* CUDA package (hwnas's, and a one-convolution model compiled in plain torch, in
the compiling process and in a fresh one) ended the process with SIGSEGV inside
``torch.export.pt2_archive._package.load_pt2``; CPU packages load and run (torch 2.13).
So the package is first loaded in a child process and a crash becomes a clear error
naming the ``torch-export`` engine (:mod:`hwnas.engines.torch_export`), the PyTorch-native
GPU form that avoids AOTInductor's loader: a ``torch.export`` archive replayed as a CUDA
graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import EngineError, Emitter, ModelFiles, Session


def precision_module(torch: Any, module: Any, device: str, precision: str) -> Any:
    """A copy of ``module`` on ``device``; fp16 as the half network behind fp32 casts, so
    every hwnas engine takes and returns float32. The caller's module is left untouched."""
    import copy

    net = copy.deepcopy(module).eval().to(device.lower())
    if precision != "fp16":
        return net

    class _Half(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner.half()

        def forward(self, x: Any) -> Any:
            return self.inner(x.half()).float()

    return _Half(net).eval()


@dataclass
class TorchEmitterBase(Emitter):
    """What the PyTorch-native engines share: torch import, device check, versions."""

    extra = "torch"
    profiler = "torch"

    def check(self) -> None:
        try:
            import torch
        except ImportError as exc:
            raise self.missing("torch", exc) from None
        self._torch = torch
        if self.device_kind != "cuda":
            return
        if not torch.cuda.is_available():
            raise EngineError(f"{self.name} on cuda needs a CUDA GPU; torch.cuda.is_available() "
                              "is False here (use --device cpu)")
        n = torch.cuda.device_count()
        if self.device_index >= n:
            raise EngineError(f"{self.name}: device {self.device} does not exist here (this "
                              f"machine has {n} CUDA device(s), numbered from 0)")
        torch.cuda.set_device(self.device_index)  # as the torch profiler does: "cuda" is this GPU

    def runtime(self) -> dict[str, Any]:
        t = self._torch
        d: dict[str, Any] = {"runtime": self.name, "version": t.__version__}
        if self.device_kind == "cuda":
            d["cuda"] = str(t.version.cuda)
            d["gpu"] = t.cuda.get_device_name(self.device_index)
            d["tied_to"] = "this GPU architecture and this torch/CUDA version"
        return d

    def _module(self, files: ModelFiles) -> Any:
        return precision_module(self._torch, files.module, self.device, self.precision)

    def _exported(self, files: ModelFiles) -> Any:
        torch = self._torch
        x = torch.zeros(files.input_shape, device=self.device.lower())
        with torch.no_grad():
            return torch.export.export(self._module(files), (x,))

    def _write_pt2(self, files: ModelFiles, out_dir: Path, what: str,
                   write: Callable[[Any, Path], None]) -> dict[str, Any]:
        """``model.pt2`` from the exported fine-tuned module by ``write(program, path)``."""
        target = out_dir / "model.pt2"
        try:
            write(self._exported(files), target)
        except Exception as exc:  # noqa: BLE001
            raise self.failed(what, exc) from None
        return {"file": target.name, "files": [target.name],
                "source": "torch.export of the fine-tuned module (BN folded)"}


@dataclass
class TorchAotiEmitter(TorchEmitterBase):
    name = "torch-aoti"
    suffix = ".pt2"

    def check(self) -> None:
        super().check()
        if not hasattr(self._torch._inductor, "aoti_compile_and_package"):
            raise EngineError(f"torch {self._torch.__version__} has no AOTInductor packaging "
                              "(torch._inductor.aoti_compile_and_package); torch >= 2.6 needed")

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        from ..profiling import torch_threads_kept

        torch = self._torch
        cpu = self.device_kind == "cpu"
        with torch_threads_kept():
            if cpu:
                # Inductor generates CPU kernels for the compiling process's thread count
                # (it splits their loops for that many): a package compiled with 2 threads
                # and run with 1 ran 3.0% slower than one compiled with 1
                # (benchmarks/aoti_engine_gap.py). So the engine is compiled for the threads
                # it is measured with, as a --mode aoti table's blocks are compiled for the
                # threads the table is profiled with.
                torch.set_num_threads(self.threads)
            info = self._write_pt2(files, out_dir, "compile the AOTInductor package",
                                   lambda ep, path: torch._inductor.aoti_compile_and_package(
                                       ep, package_path=str(path)))
        from hwnas_profilers.trust import record_built

        record_built(out_dir / info["file"])  # hwnas built it: it may be loaded later
        return {**info, "compiled_for_threads": self.threads} if cpu else info

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        from hwnas_profilers import ProfilerError
        from hwnas_profilers.backends.torch import probe_aoti_load
        from hwnas_profilers.trust import private_copy, require_trusted

        torch = self._torch
        try:
            # loading runs the package's native code: only one hwnas built (its sha256
            # recorded when it was compiled), from a private copy of the bytes checked
            with private_copy(engine) as (copy, digest):
                require_trusted(engine, digest)
                probe_aoti_load(copy)
                fn = torch._inductor.aoti_load_package(str(copy))
        except ProfilerError as exc:
            raise EngineError(str(exc)) from None
        dev = self.device.lower()

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = fn(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(dev))
            return out.float().cpu().numpy()

        return run
