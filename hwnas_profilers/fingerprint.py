"""Device fingerprint written into every table, and the check that a table is used where it
was measured.

The fingerprint holds what latency depends on: CPU model, cores, frequency governor and
maximum clock where the OS exposes them, virtualisation; per NVIDIA GPU its name, driver,
maximum SM/memory clocks and power limit. The host CPU stays in GPU fingerprints because at
batch 1 eager GPU latency is bound by the host launching kernels (measured: a shipped H100
table predicted another H100 machine 34% low). Two machines of the same model can still
differ (cooling, firmware, neighbours): :func:`differences` only catches what the
fingerprint sees; ``hwnas tables recalibrate`` is the cure for the rest.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def _read(path: "str | Path") -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _cpuinfo(root: str) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` under ``root`` as its blank-line-separated sections (one per
    processor, plus a trailing board section on some ARM kernels); keys lower-case."""
    sections: list[dict[str, str]] = [{}]
    for line in _read(Path(root) / "proc" / "cpuinfo").splitlines():
        if not line.strip():
            if sections[-1]:
                sections.append({})
            continue
        key, sep, val = line.partition(":")
        if sep:
            sections[-1].setdefault(key.strip().lower(), val.strip())
    return [s for s in sections if s]


# Arm's own core designs (implementer 0x41) by "CPU part", as /proc/cpuinfo lists them
_ARM_PARTS = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4",
}


def _clusters(procs: list[dict[str, str]]) -> str:
    """Core count, per cluster where the cores differ: ``4x Cortex-A55 + 4x Cortex-A76``."""
    parts: dict[str, int] = {}
    for p in procs:
        part = p.get("cpu part")
        if part is None:
            continue
        impl = p.get("cpu implementer", "")
        label = _ARM_PARTS.get(part.lower()) if impl.lower() == "0x41" else None
        if label is None:
            label = f"part {impl}/{part}" if impl else f"part {part}"
        parts[label] = parts.get(label, 0) + 1
    if not parts:
        return f"{len(procs)} cores"
    return " + ".join(f"{n}x {label}" for label, n in parts.items())


def cpu_model(root: str = "/") -> str:
    """The CPU's ``model name``; on boards whose kernel gives none (aarch64), the board
    model (device tree) and its cores per cluster, so two different boards differ."""
    sections = _cpuinfo(root)
    for sec in sections:
        if sec.get("model name"):
            return sec["model name"]
    procs = [sec for sec in sections if "processor" in sec]
    board = _read(Path(root) / "proc" / "device-tree" / "model").replace("\x00", "").strip()
    if not board:  # 32-bit Raspberry Pi kernels name the board in cpuinfo instead
        board = next((sec["model"] for sec in sections
                      if sec.get("model") and not sec["model"].isdigit()), "")
    if procs and (board or any("cpu part" in p for p in procs)):
        return f"{board or platform.machine()} ({_clusters(procs)})"
    if root != "/":
        return board or "unknown"
    return board or platform.processor() or platform.machine() or "unknown"


def physical_cores(root: str = "/") -> int:
    """Distinct (physical id, core id) pairs; else the processors listed (ARM kernels give
    no core ids); else the logical count."""
    sections = _cpuinfo(root)
    pairs = {(sec.get("physical id", ""), sec["core id"]) for sec in sections if "core id" in sec}
    procs = sum("processor" in sec for sec in sections)
    return len(pairs) or procs or (os.cpu_count() or 1)


def cpu_frequency(root: str = "/") -> dict[str, Any]:
    """Governor and maximum clock (MHz) where readable; empty on hosts that hide them (VMs)."""
    base = Path(root) / "sys" / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
    d: dict[str, Any] = {}
    gov = _read(base / "scaling_governor")
    if gov:
        d["governor"] = gov
    mx = _read(base / "cpuinfo_max_freq")
    if mx.isdigit():
        d["max_mhz"] = int(mx) // 1000
    return d


def hypervisor(root: str = "/") -> bool:
    flags = next((sec.get("flags", "") for sec in _cpuinfo(root) if "flags" in sec), "")
    return "hypervisor" in flags.split()


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs as reported by nvidia-smi (empty when there is none)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=" + ",".join(f for _, f in _GPU_FIELDS),
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            rows.append({k: v for (k, _), v in zip(_GPU_FIELDS, parts)
                         if v and "N/A" not in v and "Not Supported" not in v})
    return rows


_GPU_FIELDS = (("name", "name"), ("driver", "driver_version"), ("memory", "memory.total"),
               ("max_sm_clock", "clocks.max.sm"), ("max_mem_clock", "clocks.max.memory"),
               ("power_limit", "power.limit"))


def fingerprint(include_gpu: bool = True, root: str = "/") -> dict[str, Any]:
    """The measuring machine, for a table's ``meta["device"]`` (``root``: where ``/proc``
    and ``/sys`` are read from)."""
    cpu = cpu_model(root)
    d: dict[str, Any] = {
        "name": cpu, "cpu": cpu, "logical_cores": os.cpu_count() or 1,
        "physical_cores": physical_cores(root), "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "hypervisor": hypervisor(root),
        **cpu_frequency(root),
    }
    if include_gpu:
        g = gpus()
        if g:
            d["gpus"] = g
    return d


def device_fingerprint(target: str, include_gpu: "bool | None" = None) -> dict[str, Any]:
    """:func:`fingerprint` with the ``target`` device; a GPU target is named after its GPU.
    ``include_gpu`` defaults to whether the target is a GPU."""
    d = {**fingerprint(include_gpu=target != "cpu" if include_gpu is None else include_gpu),
         "target": target}
    if target != "cpu" and d.get("gpus"):
        d["name"] = _gpu(d["gpus"], target)["name"]
    return d


def _gpu(gpus: list, target: str) -> dict:
    """The GPU a ``cuda:N`` / ``GPU.N`` target names (the first without a number), in
    nvidia-smi's (PCI bus) order: CUDA's order too under CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    from .base import device_number

    i = device_number(target)
    return gpus[i] if i < len(gpus) else gpus[0]


#: fields compared by :func:`differences` (CPU fields always: GPU latency at batch 1 follows
#: the host CPU too); absent on either side means not compared (older tables)
CPU_FIELDS = ("cpu", "logical_cores", "physical_cores", "machine", "governor", "max_mhz")
GPU_FIELDS = ("name", "driver", "max_sm_clock", "max_mem_clock", "power_limit")


def differences(measured: Any, here: "dict[str, Any] | None" = None) -> list[str]:
    """What differs between a table's fingerprint and this machine's, one phrase each."""
    if not isinstance(measured, dict) or "cpu" not in measured:
        return []  # no fingerprint (imported foreign table): nothing to compare
    here = here if here is not None else fingerprint(include_gpu=measured.get("target", "cpu")
                                                     != "cpu")
    out = [f"{k} {measured[k]!r} -> {here[k]!r}" for k in CPU_FIELDS
           if k in measured and k in here and measured[k] != here[k]]
    if measured.get("target", "cpu") != "cpu":
        a, b = measured.get("gpus") or [], here.get("gpus") or []
        t = str(measured.get("target", ""))  # its GPU, against the same number here
        if a and not b:
            out.append(f"gpu {_gpu(a, t).get('name')!r} -> none")
        elif a and b:
            ga, gb = _gpu(a, t), _gpu(b, t)
            out += [f"gpu {k} {ga[k]!r} -> {gb[k]!r}" for k in GPU_FIELDS
                    if k in ga and k in gb and ga[k] != gb[k]]
    return out


# the distributions a runtime name of a table's meta may be installed as (first found wins)
_RUNTIME_DISTS = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
                  "openvino": ("openvino",), "torch": ("torch",), "tensorrt": ("tensorrt",),
                  "executorch": ("executorch",), "litert": ("ai-edge-litert",),
                  "tflite": ("ai-edge-litert",)}


def runtime_difference(runtime: Any, version: Any) -> "str | None":
    """One phrase when the runtime's installed major.minor differs from a table's (None when
    equal, unknown, or not installed here: nothing to compare). Reads package metadata only:
    the runtime is not imported."""
    from importlib import metadata

    if not isinstance(runtime, str) or not isinstance(version, str):
        return None
    for dist in _RUNTIME_DISTS.get(runtime.lower(), ()):
        try:
            here = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        if here.split(".")[:2] != version.split(".")[:2]:
            return f"{runtime} {version} -> {here}"
        return None
    return None
