"""PyTorch exported-program engine, replayed as a CUDA graph on GPU (``torch-export``).

The network is written with ``torch.export.save`` (``model.pt2``: the ATen graph and its
weights, no Python model code needed to load it) and loaded with ``torch.export.load``.
On CUDA the loader captures the module once as a CUDA graph on a static input buffer and
serves each call as one graph replay: the batch-1 GPU form without per-kernel launch
cost, and the PyTorch-native GPU engine that does not depend on AOTInductor's package
loader (which crashed on the GPU machine available here; see :mod:`.torch_aoti`). On CPU
it runs the exported graph as is. fp16 is the half network behind fp32 casts (CUDA only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import EngineError, ModelFiles, Session
from .torch_aoti import TorchEmitterBase


@dataclass
class TorchExportEmitter(TorchEmitterBase):
    name = "torch-export"
    suffix = ".pt2"

    def runtime(self) -> dict[str, Any]:
        d = super().runtime()
        d["execution"] = ("CUDA graph replay of the loaded program" if self.device_kind == "cuda"
                          else "the exported ATen graph, run by torch")
        return d

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        return self._write_pt2(files, out_dir, "save the exported program",
                               lambda ep, path: self._torch.export.save(ep, str(path)))

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        from hwnas_profilers import ProfilerError
        from hwnas_profilers.backends.torch import check_export_archive

        torch = self._torch
        dev = self.device.lower()  # cuda:1 as torch takes it
        try:
            check_export_archive(Path(engine), torch)  # nothing in it is unpickled
        except ProfilerError as exc:
            raise EngineError(str(exc)) from None
        mod = torch.export.load(str(engine)).module().to(dev)
        if self.device_kind != "cuda":
            def run(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return mod(torch.from_numpy(np.ascontiguousarray(x, np.float32))).float().numpy()

            return run
        from hwnas_profilers.backends.torch import cuda_graph

        static = torch.zeros(input_shape, device=dev)
        graph, out = cuda_graph(torch, mod, static)

        def replay(x: np.ndarray) -> np.ndarray:
            static.copy_(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
            graph.replay()
            return out.float().cpu().numpy()

        return replay

