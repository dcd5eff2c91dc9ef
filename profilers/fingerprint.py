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
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def physical_cores() -> int:
    """Distinct (physical id, core id) pairs; falls back to the logical count."""
    pairs: set[tuple[str, str]] = set()
    phys = core = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                key = key.strip().lower()
                if key == "physical id":
                    phys = val.strip()
                elif key == "core id":
                    core = val.strip()
                    pairs.add((phys, core))
    except OSError:
        pass
    return len(pairs) or (os.cpu_count() or 1)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def cpu_frequency() -> dict[str, Any]:
    """Governor and maximum clock (MHz) where readable; empty on hosts that hide them (VMs)."""
    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    d: dict[str, Any] = {}
    gov = _read(base + "scaling_governor")
    if gov:
        d["governor"] = gov
    mx = _read(base + "cpuinfo_max_freq")
    if mx.isdigit():
        d["max_mhz"] = int(mx) // 1000
    return d


def hypervisor() -> bool:
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return " hypervisor" in flags


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


def fingerprint(include_gpu: bool = True) -> dict[str, Any]:
    """The measuring machine, for a table's ``meta["device"]``."""
    d: dict[str, Any] = {
        "name": cpu_model(), "cpu": cpu_model(), "logical_cores": os.cpu_count() or 1,
        "physical_cores": physical_cores(), "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "hypervisor": hypervisor(), **cpu_frequency(),
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
        d["name"] = d["gpus"][0]["name"]
    return d


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
        if a and not b:
            out.append(f"gpu {a[0].get('name')!r} -> none")
        elif a and b:
            out += [f"gpu {k} {a[0][k]!r} -> {b[0][k]!r}" for k in GPU_FIELDS
                    if k in a[0] and k in b[0] and a[0][k] != b[0][k]]
    return out
