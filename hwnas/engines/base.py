"""The one small interface every engine emitter implements.

An emitter turns the precision-typed model files of one sub-network (:class:`ModelFiles`:
an fp32 ONNX, the ONNX in the engine's precision, and the PyTorch module) into an engine
file for one runtime, and can run that file for the parity check. Measuring the engine is
not the emitter's job: the device-side ``hwnas_profilers`` backend named by ``profiler`` loads
the engine file and times it with the same protocol as the device tables, so a manifest's
measured figure and a table's predicted one come from one protocol.

Heavy runtimes are imported inside ``check``/``emit``/``session`` only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from hwnas_profilers.base import ProfilerError, check_device, device_kind, device_number
from hwnas_profilers.runtimes import PRECISIONS, RUNTIMES, DevicePrecisions, facts, narrowed

from ..errors import MissingDependency, UserError


class EngineError(UserError):
    """An engine cannot be built as asked (precision, device, a failed build). Exit 2."""


@dataclass(frozen=True)
class ModelFiles:
    """The sources every emitter builds from; precision lives in ``onnx``."""

    precision: str
    fp32_onnx: Path                 # the fine-tuned network, BN folded, fp32
    onnx: Path                      # the same network in ``precision`` (fp16 / Q/DQ int8)
    module: Any                     # torch module (fp32, BN folded) for PyTorch-native emitters
    input_shape: tuple[int, ...]    # NCHW at batch 1; input and output are float32
    calibration: np.ndarray         # the images post-training quantization calibrates on
    metadata: Mapping[str, str] = field(default_factory=dict)  # for the engine file itself


Session = Callable[[np.ndarray], np.ndarray]  # one NCHW float32 batch-1 input -> logits


@dataclass
class Emitter(abc.ABC):
    """An engine format for one runtime, on one device, at one precision."""

    device: str = "cpu"
    precision: str = "fp32"
    threads: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)

    name: ClassVar[str] = ""
    extra: ClassVar[str] = ""          # pip extra that installs the runtime
    suffix: ClassVar[str] = ""         # the engine file's suffix
    profiler: ClassVar[str] = ""       # the profilers backend that loads and times it
    # the device kinds of its profiler's runtime the engine format is built for (empty: all)
    device_kinds: ClassVar[tuple[str, ...]] = ()
    # per device kind, the precisions it builds: its profiler's runtime facts
    # (:data:`hwnas_profilers.runtimes.RUNTIMES`) on ``device_kinds``, derived; an emitter
    # whose profiler is not a built-in one declares its own
    precisions: ClassVar[DevicePrecisions] = facts({"cpu": ("fp32",)})
    # int8 from the PyTorch module by the runtime's own converter (not from the Q/DQ ONNX);
    # ``emit`` then returns its recipe as ``quantization``
    quantizes_module: ClassVar[bool] = False
    offers_qat: ClassVar[bool] = True  # quantization-aware fine-tuning for its int8
    # non-empty for a runtime whose path has never run on its hardware: export says so
    untested: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)  # a subclass that names no other profiler keeps its parent's
        if "precisions" not in own and ("profiler" in own or "device_kinds" in own) \
                and cls.profiler in RUNTIMES:
            cls.precisions = narrowed(RUNTIMES[cls.profiler], cls.device_kinds)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EngineError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        try:
            check_device(self.device)  # the profilers' own check: cuda:1 passes both
        except ProfilerError as exc:
            raise EngineError(str(exc)) from None
        dev = self.device_kind
        if dev not in self.precisions:
            raise EngineError(f"{self.name} engines are built for {', '.join(self.precisions)}, "
                              f"not device {self.device!r}")
        if self.precision not in self.precisions[dev]:
            raise EngineError(f"{self.name} on {dev} does not support precision {self.precision}; "
                              f"supported: {', '.join(self.precisions[dev])}")
        self.check()

    @property
    def device_kind(self) -> str:
        """The device without its GPU number (``cuda`` for ``cuda:1``), as profilers parse it."""
        return device_kind(self.device)

    @property
    def device_index(self) -> int:
        """The GPU number (``cuda:1`` -> 1); 0 when none is given."""
        return device_number(self.device)

    # ---------------------------------------------------------------- hooks
    @abc.abstractmethod
    def check(self) -> None:
        """Import the runtime and check the device; raise MissingDependency / EngineError."""

    @abc.abstractmethod
    def runtime(self) -> dict[str, Any]:
        """Versions (and device facts) the engine is tied to, for the manifest."""

    @abc.abstractmethod
    def emit(self, files: ModelFiles, out_dir: Path) -> dict[str, Any]:
        """Write the engine into ``out_dir``; return ``{"file": name, "files": [...], ...}``."""

    @abc.abstractmethod
    def session(self, engine: Path, input_shape: tuple[int, ...]) -> Session:
        """A function running the engine file on one input (for the parity check)."""

    # -------------------------------------------------------------- helpers
    def missing(self, module: str, exc: BaseException) -> MissingDependency:
        """The one-line error for a runtime module that is not installed, naming the extra."""
        return MissingDependency(f"engine {self.name!r} needs {module}, which is not installed "
                                 f"({exc.__class__.__name__}: {exc}); install it with: "
                                 f"pip install 'hwnas[{self.extra}]'")

    def failed(self, what: str, exc: BaseException) -> EngineError:
        """The one-line error for a runtime step that failed, with the runtime's reason."""
        first = (" ".join(str(exc).split()) or exc.__class__.__name__)[:300]
        return EngineError(f"{self.name} could not {what}: {exc.__class__.__name__}: {first}")
