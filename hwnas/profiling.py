"""Host-side profiling: export a space's block bundle to a cache, then run ``profilers``.

The device-side package does the measuring; this module only adds what needs hwnas
(the space, the ONNX export through torch) and turns the profilers' errors into hwnas
``UserError`` lines.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import UserError, require
from .spaces import SearchSpace

DEFAULT_CALIBRATION_NETS = 12


def cache_dir() -> Path:
    root = os.environ.get("HWNAS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hwnas")
    return Path(root)


def bundle_dir(space: SearchSpace, calibration_nets: int, seed: int = 0) -> Path:
    return cache_dir() / "bundles" / f"{space.name}-{space.id}-n{calibration_nets}-s{seed}"


@contextlib.contextmanager
def profiler_errors() -> Iterator[None]:
    """Re-raise the profilers' bad-input errors as hwnas UserErrors (one line, exit 2)."""
    from profilers import ProfilerError

    try:
        yield
    except ProfilerError as exc:
        raise UserError(" ".join(str(exc).split())) from None


def export_cached_bundle(space: SearchSpace, calibration_nets: int = DEFAULT_CALIBRATION_NETS,
                         seed: int = 0, progress: Callable[[int, int], None] | None = None
                         ) -> Path:
    from .bundle import export_bundle

    require("torch", "torch")
    require("onnx", "torch")
    out = bundle_dir(space, calibration_nets, seed)
    export_bundle(space, out, calibration_nets, seed, progress=progress)
    return out


def profile_space(space: SearchSpace, backend: str, out: "str | Path", device: str = "cpu",
                  precision: str = "fp32", threads: int = 1, resume: bool = False,
                  calibration_nets: int = DEFAULT_CALIBRATION_NETS, quick: bool = False,
                  export_progress: Callable[[int, int], None] | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Export (cached) and profile ``space``; returns the device table as written."""
    with profiler_errors():
        from profilers import Protocol, Settings, get_profiler, profile_bundle

        settings = Settings(device=device, precision=precision, threads=threads)
        prof = get_profiler(backend, settings)  # fail on a missing runtime before exporting
        out = Path(out)
        if out.exists() and not resume:
            raise UserError(f"{out} exists; pass --resume to continue it, or choose another --out")
        bundle = export_cached_bundle(space, calibration_nets, progress=export_progress)
        return profile_bundle(bundle, backend, out, settings,
                              Protocol.quick() if quick else Protocol(), resume=resume,
                              progress=progress, profiler=prof)


def measure_onnx(model: "str | Path", backend: str, device: str = "cpu", precision: str = "fp32",
                 threads: int = 1, quick: bool = False,
                 input_shape: "tuple[int, ...] | None" = None) -> dict[str, Any]:
    """One model or engine file (``.onnx``, ``.xml``, ``.plan``, ``.pt2``) end to end."""
    with profiler_errors():
        from profilers import Protocol, Settings, measure_model

        return measure_model(model, backend, Settings(device=device, precision=precision,
                                                      threads=threads),
                             Protocol.quick() if quick else Protocol(), input_shape=input_shape)
