"""Device fingerprint written into every table: CPU model and cores, GPU name and driver."""

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


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs as reported by nvidia-smi (empty when there is none)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            rows.append({"name": parts[0], "driver": parts[1],
                         "memory": parts[2] if len(parts) > 2 else ""})
    return rows


def fingerprint(include_gpu: bool = True) -> dict[str, Any]:
    """The measuring machine, for a table's ``meta["device"]``."""
    d: dict[str, Any] = {
        "name": cpu_model(), "cpu": cpu_model(), "logical_cores": os.cpu_count() or 1,
        "physical_cores": physical_cores(), "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    if include_gpu:
        g = gpus()
        if g:
            d["gpus"] = g
    return d
