"""ExecuTorch engines (``model.pte``, XNNPACK delegate) and ExecuTorch block files.

Both come from the PyTorch module through the one recipe in
:mod:`hwnas_profilers.backends.executorch` (``torch.export`` ->
``to_edge_transform_and_lower`` with ``XnnpackPartitioner`` -> ``.pte``), so a table
measures the kind of program an engine runs:

- **Block bundle** (``hwnas blocks export --backend executorch``): ``K.pte`` (fp32) and
  ``K.int8.pte`` for every block and calibration network, written here on the host; the
  device only runs them. int8 block files are post-training quantized on fixed random
  inputs, as the ONNX bundles' int8 copies are.
- **Engine** (``hwnas export --backend executorch``): fp32, or int8 by torchao's PT2E flow
  with ``XNNPACKQuantizer`` (symmetric per-channel int8 weights, int8 activations):
  quantization-aware fine-tuning (``prepare_qat_pt2e``, trained on the training split, then
  ``convert_pt2e``) when QAT is asked for, post-training quantization (``prepare_pt2e``,
  calibrated on training images, ``convert_pt2e``) otherwise; the manifest says which.
  Input and output stay float32 NCHW: the program quantizes and dequantizes inside the
  delegate. A program with any operator outside the XNNPACK delegate is refused.

Needs ``executorch`` (``pip install 'hwnas[executorch]'``), which brings its own runtime.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import MissingDependency
from .base import EngineError, Emitter, ModelFiles, Session

INPUT_LAYOUT = "NCHW"
PTQ_METHOD = ("post-training quantization by torchao's PT2E flow with ExecuTorch's "
              "XNNPACKQuantizer (prepare_pt2e, convert_pt2e)")
QAT_METHOD = ("quantization-aware fine-tuning by torchao's PT2E flow with ExecuTorch's "
              "XNNPACKQuantizer (prepare_qat_pt2e, training steps, convert_pt2e)")
RECIPE = "int8 symmetric per-channel weights, int8 activations"
_TRAINED = "_hwnas_pt2e_qat"  # set on a module this file quantized by QAT


def recipe() -> Any:
    """:mod:`hwnas_profilers.backends.executorch` with executorch importable, or one line
    naming the extra."""
    try:
        from hwnas_profilers.backends import executorch as et

        with et.quiet_stderr():
            import executorch.exir  # noqa: F401 - the exporter itself
    except ImportError as exc:
        raise MissingDependency(f"ExecuTorch export needs executorch, which is not installed "
                                f"({exc.__class__.__name__}: {exc}); install it with: "
                                "pip install 'hwnas[executorch]'") from None
    return et


def require_converter() -> Any:
    """The bundle writer's check (:data:`hwnas.bundle.FORMATS`)."""
    return recipe()


def program_bytes(module: Any, input_shape: Sequence[int], precision: str,
                  calibration: "np.ndarray | None" = None) -> bytes:
    """The ``.pte`` of ``module`` in ``precision``; int8 post-training quantized on
    ``calibration`` (NCHW images, one per row), else on the recipe's fixed random inputs."""
    import torch

    et = recipe()
    x = torch.zeros(tuple(int(d) for d in input_shape))
    if getattr(module, _TRAINED, False):
        module = module.graph  # the converted graph itself (its wrapper does not re-export)
    elif precision == "int8":
        if calibration is None:
            calibration = np.stack([et.calibration_input(input_shape, i)[0]
                                    for i in range(et.CALIBRATION_INPUTS)])
        calib = [torch.from_numpy(np.ascontiguousarray(calibration[i:i + 1], np.float32))
                 for i in range(len(calibration))]
        with et.quiet_stderr():
            module = et.quantize_ptq(copy.deepcopy(module).eval(), x, calib)
    with et.quiet_stderr():
        return et.lower(module, x, precision)


def bundle_file(stem: str, precision: str) -> str:
    """The bundle file of ``stem`` in ``precision`` (``stem.pte``, ``stem.int8.pte``), by the
    profiler's naming rule (:func:`hwnas_profilers.backends.executorch.precision_file`)."""
    from hwnas_profilers.backends.executorch import precision_file

    return precision_file(f"{stem}.pte", precision).as_posix()


def write_bundle_files(make_module: Callable[[], Any], input_shape: Sequence[int], out: Path,
                       stem: str, precisions: Sequence[str]) -> dict[str, str]:
    """A bundle's files of one module (:func:`bundle_file`); a program XNNPACK does not
    take whole is still written (the device records the block as failed, with the
    operators named). Present files are kept."""
    from hwnas_profilers.fileformat import atomic_path

    from ..bundle import precision_files

    def write(module: Any, path: Path, prec: str) -> None:
        data = program_bytes(module, input_shape, prec)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)

    return precision_files(make_module, out, lambda p: Path(bundle_file(stem, p)), write,
                           precisions)


def trainable(graph: Any) -> Any:
    """A PT2E-prepared graph as a module the training loop can switch between train and
    eval (an exported graph refuses ``.train()``; torchao moves its ops instead)."""
    import torch
    from torchao.quantization.pt2e import (move_exported_model_to_eval,
                                           move_exported_model_to_train)

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.graph = graph

        def forward(self, x: Any) -> Any:
            return self.graph(x)

        def train(self, mode: bool = True) -> Any:
            (move_exported_model_to_train if mode else move_exported_model_to_eval)(self.graph)
            self.training = mode
            return self

    return Graph()


def qat_module(folded: Any, data: Any, steps: int, seed: int, say: Callable[[str], None]
               ) -> Any:
    """``folded`` fine-tuned ``steps`` steps with PT2E fake quantizers
    (``prepare_qat_pt2e``) on the training split, then converted (``convert_pt2e``): the
    int8 network as Q/DQ torch ops, marked so :func:`program_bytes` lowers it as it is."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    from ..train.loop import sgd, train_steps

    et = recipe()
    x = data.train_x[:2].float()
    batch = torch.export.Dim("batch", min=1, max=4096)  # trained in batches, lowered at 1
    with et.quiet_stderr():
        graph = et.exported(copy.deepcopy(folded).eval(), x, ({0: batch},))
        prepared = prepare_qat_pt2e(graph, et.int8_quantizer(qat=True))
    net = trainable(prepared)
    say(f"QAT: {steps} fine-tuning steps with PT2E fake quantizers (XNNPACKQuantizer)")
    train_steps(net, data.train_x, data.train_y, sgd(net.parameters(), 0.002, 0.0),
                lambda r: None, steps, 64, seed)
    net.eval()
    with et.quiet_stderr():
        converted = convert_pt2e(prepared)
    out = trainable(converted).eval()
    setattr(out, _TRAINED, True)
    return out


@dataclass
class ExecuTorchEmitter(Emitter):
    name = "executorch"
    extra = "executorch"
    suffix = ".pte"
    profiler = "executorch"
    quantizes_module = True  # PT2E from the module, not the Q/DQ ONNX
    offers_qat = True        # PT2E QAT (prepare_qat_pt2e): :func:`qat_module`

    def check(self) -> None:
        self._et = recipe()  # missing: one line naming the extra
        from hwnas_profilers.bounds import cores

        if self.threads > cores():
            raise EngineError(f"threads must be at most this machine's {cores()} logical "
                              f"cores, got {self.threads}")
        from executorch.runtime import Runtime

        self._rt = Runtime.get()

    def runtime(self) -> dict[str, Any]:
        from importlib import metadata

        return {"runtime": "executorch", "version": metadata.version("executorch"),
                "torchao": metadata.version("torchao"), "delegate": self._et.DELEGATE,
                "threads": max(self.threads, 1),
                "tied_to": "the ExecuTorch runtime version (program schema "
                           f"{self._et.IDENTIFIER.decode()}) built with the XNNPACK backend; "
                           "not to this CPU (XNNPACK picks its kernels when it loads)"}

    def quantize_aware(self, folded: Any, data: Any, steps: int, seed: int,
                       say: Callable[[str], None]) -> Any:
        """The runtime's own QAT flow; :meth:`emit` lowers its result as it is."""
        return qat_module(folded, data, steps, seed, say)

    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        target = out_dir / "model.pte"
        trained = bool(getattr(files.module, _TRAINED, False))
        try:
            data = program_bytes(files.module, files.input_shape, self.precision,
                                 files.calibration if self.precision == "int8" else None)
        except MissingDependency:
            raise
        except Exception as exc:  # noqa: BLE001 - the exporter's own error, in one line
            raise self.failed("lower the network to an ExecuTorch program", exc) from None
        from hwnas_profilers import ProfilerError

        try:
            self._et.require_delegated(data, target.name)
        except ProfilerError as exc:
            raise EngineError(str(exc)) from None
        target.write_bytes(data)
        info: dict[str, Any] = {
            "file": target.name, "files": [target.name],
            "source": "torch.export of the fine-tuned module (BN folded), lowered by "
                      "to_edge_transform_and_lower with XnnpackPartitioner",
            "input_layout": INPUT_LAYOUT,
            "load": {"call": "executorch.runtime.Runtime.get().load_program('model.pte')"
                             ".load_method('forward').execute([x])",
                     "delegate": "XNNPACK (the whole program runs in it)",
                     "threads": "ExecuTorch's process-wide pool (the measured figure: "
                                f"{max(self.threads, 1)} thread(s))"}}
        if self.precision == "int8":
            info["quantization"] = {"method": QAT_METHOD if trained else PTQ_METHOD,
                                    "recipe": RECIPE, "qat": trained,
                                    "input": "float32 (quantized inside the program)"}
        return info

    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        import torch

        et = self._et
        with et.quiet_stderr():
            program = self._rt.load_program(Path(engine).read_bytes())
            method = program.load_method("forward")

        def run(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
            out = method.execute([t])[0]
            _ = program  # the method's memory belongs to the program: keep it alive
            return out.detach().numpy().astype(np.float32)

        return run
