"""What each built-in runtime runs: its device kinds and, on each, its precisions.

Declared once here and read by both sides: a profiler backend takes its runtime's entry by
its own ``name`` (:attr:`hwnas_profilers.base.Profiler.device_precisions`), and an engine
emitter takes the entry of the profiler that times its files (its ``profiler``), narrowed to
the device kinds its engine format is built for. A table measures a device and precision
only where an engine can be built for it, and the other way round.

Plain data: importing this module imports no runtime. A third-party backend declares its
own ``device_precisions`` on its class instead.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, Mapping

PRECISIONS = ("fp32", "fp16", "int8")

DevicePrecisions = Mapping[str, tuple[str, ...]]


def facts(table: Mapping[str, tuple[str, ...]]) -> DevicePrecisions:
    """A read-only copy of one runtime's ``{device kind: precisions}``."""
    return MappingProxyType({d: tuple(p) for d, p in table.items()})


RUNTIMES: Mapping[str, DevicePrecisions] = MappingProxyType({
    # device kinds are its execution providers (CPU, CUDA, TensorRT)
    "onnxruntime": facts({"cpu": PRECISIONS, "cuda": ("fp32", "fp16"), "tensorrt": PRECISIONS}),
    "openvino": facts({"cpu": PRECISIONS, "gpu": PRECISIONS, "npu": ("fp16", "int8")}),
    "tensorrt": facts({"cuda": PRECISIONS}),
    "torch": facts({"cpu": ("fp32",), "cuda": ("fp32", "fp16")}),
    "executorch": facts({"cpu": ("fp32", "int8")}),   # the XNNPACK delegate, on the CPU
    "litert": facts({"cpu": ("fp32", "int8")}),       # the XNNPACK delegate, on the CPU
})


def all_precisions(table: DevicePrecisions) -> tuple[str, ...]:
    """The precisions a runtime runs on any of its devices, in :data:`PRECISIONS` order."""
    return tuple(p for p in PRECISIONS if any(p in precs for precs in table.values()))


def narrowed(table: DevicePrecisions, devices: Iterable[str] = ()) -> DevicePrecisions:
    """``table`` on ``devices`` only (every device kind when none is given): an engine
    format built for fewer devices than its runtime measures."""
    keep = tuple(devices)
    unknown = [d for d in keep if d not in table]
    if unknown:
        raise ValueError(f"device kinds {unknown} are not in the runtime's {list(table)}")
    return facts({d: p for d, p in table.items() if not keep or d in keep})
