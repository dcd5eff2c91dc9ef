"""The small interface every backend implements, and the profilers' error types.

A backend turns one ONNX file into a :class:`Runner`: an object whose ``time_ms()`` runs
one synchronous inference on fixed input and returns its duration. Host-timed backends
wrap ``time.perf_counter_ns`` around a blocking call; GPU backends use device events or
synchronise around the timed region. The measurement protocol (warm-up, interleaved
rounds, stop rule, statistics) lives in :mod:`hwnas_profilers.protocol` and is the same for all.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from .runtimes import PRECISIONS, RUNTIMES, DevicePrecisions, all_precisions, facts

#: the one progress callback shape of hwnas and its profilers: ``progress(stage, done,
#: total)``, ``stage`` a short text naming what is counted (a rich bar's description)
Progress = Callable[[str, int, int], None]


class ProfilerError(Exception):
    """Bad input to a profiling run (file, backend, option). The CLIs print one line, exit 2."""


class MissingRuntime(ProfilerError):
    """The backend's runtime is not installed; the message names the extra to install."""


class Unsupported(ProfilerError):
    """A device/precision combination this backend cannot measure (never a fake number)."""


@dataclass(frozen=True)
class Settings:
    """What a table is measured with; written into its ``meta``."""

    device: str = "cpu"
    precision: str = "fp32"
    threads: int = 1  # 0: one per core of this machine; 1 by default (noise: hwnas/device_tables/README.md)
    batch: int = 1
    mode: str = ""    # backend-specific execution mode ("": its default; torch: eager, cuda-graph, aoti)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ProfilerError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ProfilerError(f"threads must be an integer >= 0, got {self.threads!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ProfilerError(f"batch must be an integer >= 1, got {self.batch!r}")
        check_device(self.device)

    @property
    def device_kind(self) -> str:
        """The device without its index: ``cuda`` for ``cuda:1``."""
        return device_kind(self.device)

    @property
    def device_index(self) -> int:
        """The GPU's number (``cuda:1`` -> 1, as trtexec's --device and onnxruntime's
        device_id count); 0 when none is given."""
        return device_number(self.device)

    @property
    def n_threads(self) -> int:
        return self.threads or (os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        d = {"device": self.device, "precision": self.precision, "threads": self.n_threads,
             "batch": self.batch}
        if self.mode:
            d["mode"] = self.mode
        return d


def check_device(target: str) -> None:
    """ProfilerError unless ``target`` is a device, with a GPU number after a colon at most
    (``cuda:1``); OpenVINO's own ``GPU.1`` passes as it is. Profilers and emitters both check
    a device with this, so one accepts what the other does."""
    kind, sep, index = str(target).partition(":")
    if sep and not (index.isascii() and index.isdecimal() and kind.lower() != "cpu"):
        raise ProfilerError(f"device {target!r}: a device index is a GPU's number, "
                            "as in cuda:1 (OpenVINO names its own: GPU.1)")


def device_kind(target: str) -> str:
    """The device a target names without its number, lower case: ``cuda`` for ``cuda:1``,
    ``gpu`` for OpenVINO's ``GPU.1``."""
    return str(target).replace(".", ":").partition(":")[0].lower()


def device_number(target: str) -> int:
    """The GPU number a target names: ``cuda:1`` (hwnas, torch) or ``GPU.1`` (OpenVINO)
    -> 1; 0 when it names none. The one parser of device numbers."""
    n = str(target).replace(".", ":").partition(":")[2]
    return int(n) if n.isascii() and n.isdecimal() else 0


def cuda_device_count() -> int | None:
    """How many GPUs CUDA numbers here (``CUDA_VISIBLE_DEVICES`` when set, else
    nvidia-smi's list), for runtimes that cannot say so before a session fails;
    None when neither says."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip():
        return len([d for d in visible.split(",") if d.strip()])
    from .fingerprint import gpus

    return len(gpus()) or None


class Runner(abc.ABC):
    """One loaded model with its input bound; ``time_ms`` is one timed inference."""

    @abc.abstractmethod
    def time_ms(self) -> float:
        """Run one inference synchronously and return its duration in milliseconds."""

    def close(self) -> None:  # pragma: no cover - most runners hold nothing to free
        pass


@dataclass
class Profiler(abc.ABC):
    """A backend: a runtime on one device at one precision and thread count."""

    settings: Settings = field(default_factory=Settings)

    name: ClassVar[str] = ""
    extra: ClassVar[str] = ""  # the pip extra that installs the runtime
    # the runtime's facts, per device kind the precisions it runs: a built-in backend's
    # from :data:`hwnas_profilers.runtimes.RUNTIMES` by its ``name`` (the engine emitters
    # read the same entry); a third-party backend declares its own
    device_precisions: ClassVar[DevicePrecisions] = facts({"cpu": ("fp32",)})
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)  # on any device (derived)
    model_suffixes: ClassVar[tuple[str, ...]] = (".onnx",)  # files ``load`` accepts
    # the block bundle it reads (``hwnas blocks export --backend``): "onnx", or a format
    # exported on the host for a runtime that cannot convert on the device ("litert")
    bundle_format: ClassVar[str] = "onnx"
    modes: ClassVar[tuple[str, ...]] = ()  # execution modes beside the default ("")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)  # a subclass that takes no other name keeps its parent's
        if "device_precisions" not in own and "name" in own and cls.name in RUNTIMES:
            cls.device_precisions = RUNTIMES[cls.name]
        cls.precisions = all_precisions(cls.device_precisions)

    def __post_init__(self) -> None:
        if self.settings.mode and self.settings.mode not in self.modes:
            raise Unsupported(f"backend {self.name!r} has no mode {self.settings.mode!r}; "
                              f"modes: {', '.join(self.modes) or 'only its default'}")
        self.check()

    # ---------------------------------------------------------------- hooks
    @abc.abstractmethod
    def check(self) -> None:
        """Import the runtime and validate device/precision; raise MissingRuntime/Unsupported."""

    @abc.abstractmethod
    def runtime(self) -> dict[str, str]:
        """``{"runtime": name, "version": version, ...}`` for the table's meta."""

    @abc.abstractmethod
    def devices(self) -> list[str]:
        """Device names this runtime can measure on this machine."""

    @abc.abstractmethod
    def load(self, onnx_path: Path, input_shape: Sequence[int]) -> Runner:
        """Compile ``onnx_path`` for the device and bind a fixed input of ``input_shape``."""

    def close(self) -> None:
        """Give back what constructing the profiler changed in this process (the torch
        backend: the caller's thread count). Whoever gets a profiler closes it; also a
        context manager. Closing twice is harmless."""

    def __enter__(self) -> "Profiler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def identity_file(self, folder: Path) -> Path:
        """The do-nothing graph the per-call overhead is measured on, written into
        ``folder`` in a format ``load`` takes (ONNX here; a backend whose device has no
        ``onnx`` package writes its own)."""
        from .onnxgraph import write_identity_model

        return write_identity_model(Path(folder) / "identity.onnx")

    def reference_file(self, folder: Path) -> Path:
        """The reference graph of figure ``ref`` (:func:`hwnas_profilers.onnxgraph.write_reference_model`),
        written into ``folder`` in a format ``load`` takes; input (1, 16, 32, 32)."""
        from .onnxgraph import write_reference_model

        return write_reference_model(Path(folder) / "reference.onnx")

    # -------------------------------------------------------------- helpers
    def timer(self) -> str:
        """How ``time_ms`` is taken (written into the protocol)."""
        return "host perf_counter around a blocking call"

    def missing(self, module: str, exc: BaseException) -> MissingRuntime:
        return MissingRuntime(f"backend {self.name!r} needs {module}, which is not installed "
                              f"({exc.__class__.__name__}: {exc}); install it with: "
                              f"pip install 'hwnas[{self.extra}]'")

    def check_precision(self) -> None:
        """Unsupported unless the runtime runs the settings' precision on their device kind
        (on a kind its facts do not list, on any of its devices)."""
        dev, prec = self.settings.device_kind, self.settings.precision
        if prec not in self.device_precisions.get(dev, self.precisions):
            raise self.unsupported(f"precision {prec} on device {dev}")

    def unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"backend {self.name!r} cannot measure {what}; supported precisions: "
                           f"{', '.join(self.precisions)}, devices here: "
                           f"{', '.join(self.devices()) or 'none'}")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.settings.to_dict(), **self.runtime()}
