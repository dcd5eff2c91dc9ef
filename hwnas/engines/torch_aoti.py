"""PyTorch AOTInductor engine: a ``.pt2`` package from ``torch.export`` + AOTInductor.

The package holds the compiled kernels (C++ on CPU, Triton/CUDA on GPU) and the weights;
deployment loads it with ``torch._inductor.aoti_load_package`` (or the C++
``AOTIModelPackageLoader``) without Python model code. fp16 (CUDA only) is the network in
half precision behind fp32 input and output casts, so every hwnas engine takes the same
input. int8 is not offered: PyTorch's int8 path for AOTInductor (torchao/PT2E with the
x86 Inductor quantizer) is a different quantization recipe from the Q/DQ model the other
engines share, and mixing them would make engines of one "int8" disagree.

Compiling a proxyless-mobile net takes about a minute (2 CPU cores) or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import EngineError, Emitter, ModelFiles, Session


@dataclass
class TorchAotiEmitter(Emitter):
    name = "torch-aoti"
    extra = "torch"
    suffix = ".pt2"
    profiler = "torch"
    precisions = {"cpu": ("fp32",), "cuda": ("fp32", "fp16")}

    def check(self) -> None:
        try:
            import torch
        except ImportError as exc:
            raise self.missing("torch", exc) from None
        self._torch = torch
        if self.device.lower() == "cuda" and not torch.cuda.is_available():
            raise EngineError("torch-aoti on cuda needs a CUDA GPU; torch.cuda.is_available() "
                              "is False here (use --device cpu)")
        if not hasattr(torch._inductor, "aoti_compile_and_package"):
            raise EngineError(f"torch {torch.__version__} has no AOTInductor packaging "
                              "(torch._inductor.aoti_compile_and_package); torch >= 2.6 needed")

    def runtime(self) -> dict[str, Any]:
        t = self._torch
        d: dict[str, Any] = {"runtime": "torch-aoti", "version": t.__version__}
        if self.device.lower() == "cuda":
            d["cuda"] = str(t.version.cuda)
            d["gpu"] = t.cuda.get_device_name(0)
            d["tied_to"] = "this GPU architecture and this torch/CUDA version"
        return d

    def _module(self, files: ModelFiles) -> Any:
        import copy

        torch = self._torch
        dev = self.device.lower()
        net = copy.deepcopy(files.module).eval().to(dev)  # the caller's module stays on CPU, fp32
        if self.precision != "fp16":
            return net

        class _Half(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner.half()

            def forward(self, x: Any) -> Any:
                return self.inner(x.half()).float()

        return _Half(net).eval()

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        torch = self._torch
        target = out_dir / "model.pt2"
        x = torch.zeros(files.input_shape, device=self.device.lower())
        try:
            with torch.no_grad():
                ep = torch.export.export(self._module(files), (x,))
                torch._inductor.aoti_compile_and_package(ep, package_path=str(target))
        except Exception as exc:  # noqa: BLE001
            raise self.failed("compile the AOTInductor package", exc) from None
        return {"file": target.name, "files": [target.name], "source": "torch.export of the "
                "fine-tuned module (BN folded)"}

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        torch = self._torch
        fn = torch._inductor.aoti_load_package(str(engine))
        dev = self.device.lower()

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = fn(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(dev))
            return out.float().cpu().numpy()

        return run
