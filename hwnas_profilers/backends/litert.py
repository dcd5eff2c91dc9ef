"""LiteRT (the TFLite interpreter of ``ai-edge-litert``): CPU, through its XNNPACK delegate.

This backend needs ``ai-edge-litert`` and numpy only: no torch, no TensorFlow, no onnx,
so it runs on an ARM board or phone-class Linux device beside the runtime it measures.
Nothing converts on the device: a LiteRT block bundle is exported on the host
(``hwnas blocks export --backend litert``), one ``.tflite`` file per block and precision,
named by :func:`precision_file`. The identity and reference graphs the protocol needs are
written here as ``.tflite`` too (:mod:`hwnas_profilers.tflitegraph`).

The interpreter applies the XNNPACK delegate by itself and runs every operator the
delegate cannot take on its own builtin kernels, silently. A table must predict what the
delegate runs, so each loaded model is checked: an operator left outside the delegate
fails the block with the operators' names (recorded as failed, never as zero or as a
quiet CPU fallback), and every measured entry ran wholly inside XNNPACK.

Threads: the interpreter's ``num_threads`` (XNNPACK's thread pool), at most the cores of
this machine. Timing: the host clock around ``invoke()``, the input bound once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..base import MissingRuntime, Profiler, ProfilerError, Runner
from . import fixed_input

INT8_SUFFIX = ".int8.tflite"
_MAGIC = b"TFL3"


def precision_file(path: "str | Path", precision: str) -> Path:
    """The bundle file of ``path``'s block in ``precision``: ``X.tflite`` is fp32,
    ``X.int8.tflite`` its int8 twin. The one naming rule of LiteRT bundles (the host's
    exporter writes by it, this backend reads by it)."""
    p = Path(path)
    base = p.name[:-len(INT8_SUFFIX)] if p.name.endswith(INT8_SUFFIX) else p.stem
    return p.with_name(base + (INT8_SUFFIX if precision == "int8" else ".tflite"))


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_model_bytes(path: Path) -> None:
    """Refuse a file that is not a TFLite flatbuffer before the interpreter parses it."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[4:8] != _MAGIC:
        raise ProfilerError(f"{path} is not a LiteRT/TFLite model (no {_MAGIC.decode()} "
                            "file identifier)")


def outside_delegate(ops: Sequence[dict]) -> list[str]:
    """The operators (``NAME#index``) a loaded interpreter runs outside its delegates.

    After delegation the interpreter lists the model's own nodes, then one ``DELEGATE``
    node per delegated partition. A partition's nodes are those reached walking back from
    its outputs through the model's nodes, stopping at its inputs; the model nodes no
    partition claims run on the builtin kernels."""
    by_index = {int(o["index"]): o for o in ops}
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    model = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): int(o["index"]) for o in model for t in o["outputs"]}
    claimed: set[int] = set()
    for d in delegates:
        stop = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            node = producer.get(t)
            if t in stop or node is None or node in claimed:
                continue
            claimed.add(node)
            todo.extend(int(i) for i in by_index[node]["inputs"] if int(i) >= 0)
    return [f"{o['op_name']}#{o['index']}" for o in model if o["index"] not in claimed]


def quantized_input(detail: dict, x: np.ndarray) -> np.ndarray:
    """``x`` in the input tensor's dtype: an int8 model takes int8 (its scale and zero point)."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / (scale or 1.0)) + zero, info.min, info.max).astype(dtype)


def is_quantized(interp: Any) -> bool:
    """True when the model computes in int8 (its quantized weight or activation tensors)."""
    return any(np.dtype(t["dtype"]) in (np.int8, np.uint8)
               for t in interp.get_tensor_details())


class _LiteRtRunner(Runner):
    def __init__(self, interp: Any) -> None:
        import time

        self._i, self._clock = interp, time.perf_counter_ns

    def time_ms(self) -> float:
        t0 = self._clock()
        self._i.invoke()
        return (self._clock() - t0) / 1e6

    def close(self) -> None:
        self._i = None


@dataclass
class LiteRtProfiler(Profiler):
    name = "litert"
    extra = "litert-device"
    model_suffixes = (".tflite",)
    bundle_format = "litert"

    def check(self) -> None:
        try:
            from ai_edge_litert import interpreter
        except ImportError as exc:
            raise self.missing("ai-edge-litert", exc) from None
        self._interp = interpreter
        if self.settings.device_kind != "cpu":
            raise self.unsupported(f"device {self.settings.device!r} (the XNNPACK delegate "
                                   "runs on the CPU)")
        self.check_precision()
        cores = usable_cores()
        if self.settings.n_threads > cores:
            raise ProfilerError(f"--threads {self.settings.n_threads} is more than the "
                                f"{cores} cores this process may use")

    def missing(self, module: str, exc: BaseException) -> MissingRuntime:
        return MissingRuntime(f"backend 'litert' needs {module}, which is not installed "
                              f"({exc.__class__.__name__}: {exc}); install it with: pip install "
                              "'hwnas[litert-device]' on the device, or 'hwnas[litert]' on a "
                              "host that also converts")

    def runtime(self) -> dict[str, str]:
        from importlib import metadata

        return {"runtime": "litert", "version": metadata.version("ai-edge-litert"),
                "delegate": "XNNPACK (the interpreter's default delegate)",
                "delegation": "every measured entry ran wholly inside the XNNPACK delegate; "
                              "a block with an operator outside it is recorded as failed"}

    def devices(self) -> list[str]:
        return ["cpu"]

    def identity_file(self, folder: Path) -> Path:
        from ..tflitegraph import write_identity_model

        return self._own(write_identity_model(Path(folder) / "identity.tflite"))

    def reference_file(self, folder: Path) -> Path:
        from ..tflitegraph import write_reference_model

        return self._own(write_reference_model(Path(folder) / "reference.tflite"))

    def _own(self, path: Path) -> Path:
        # the protocol's own fp32 graphs are measured as they are, at any table precision
        if not hasattr(self, "_own_graphs"):
            self._own_graphs: set[Path] = set()
        self._own_graphs.add(path.absolute())
        return path

    def model_file(self, path: Path) -> Path:
        """The file to load for this table's precision (a bundle's int8 twin, or the
        file itself when it is already of that precision: an engine)."""
        if path.suffix.lower() != ".tflite":
            raise ProfilerError(f"litert loads .tflite files, not {path.name}; export a "
                                "LiteRT bundle on the host: hwnas blocks export --space S "
                                "--backend litert --out DIR")
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        twin = precision_file(path, self.settings.precision)
        if twin == path or not twin.is_file():
            return path
        # the bundle's manifest vouches for ``path`` only (hwnas_profilers.bundlecheck): its
        # twin must be a plain file beside it, not a link to somewhere else
        if twin.is_symlink() or twin.resolve().parent != path.resolve().parent:
            raise ProfilerError(f"{twin} is a link out of its folder; not opened")
        return twin

    def _interpreter(self, path: Path) -> Any:
        check_model_bytes(path)
        try:
            interp = self._interp.Interpreter(model_path=str(path),
                                              num_threads=self.settings.n_threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ProfilerError(f"litert cannot load {path}: "
                                f"{' '.join(str(exc).split())[:300]}") from None
        return interp

    def load(self, onnx_path: Path, input_shape: Sequence[int] | None) -> Runner:
        path = self.model_file(Path(onnx_path))
        interp = self._interpreter(path)
        own = path.absolute() in getattr(self, "_own_graphs", ())
        if not own and is_quantized(interp) != (self.settings.precision == "int8"):
            have = "int8" if is_quantized(interp) else "fp32"
            raise ProfilerError(f"{path} is an {have} model, not {self.settings.precision}: "
                                f"measure it with --precision {have}, or export the bundle's "
                                f"{self.settings.precision} files (hwnas blocks export "
                                "--backend litert)")
        left = outside_delegate(interp._get_ops_details())
        if left:
            raise ProfilerError(f"{len(left)} operator(s) of {path.name} not delegated to "
                                f"XNNPACK (they would run on LiteRT's builtin kernels): "
                                f"{', '.join(left[:8])}")
        detail = interp.get_input_details()[0]
        shape = [int(d) for d in detail["shape"]]
        if input_shape is not None and int(np.prod(shape)) != int(np.prod(input_shape)):
            raise ProfilerError(f"{path.name} takes input {shape}, not {list(input_shape)}")
        interp.set_tensor(detail["index"], quantized_input(detail, fixed_input(shape)))
        return _LiteRtRunner(interp)
