"""Host-side profiling: export a space's block bundle to a cache, then run ``hwnas_profilers``.

The device-side package does the measuring; this module only adds what needs hwnas
(the space, the ONNX export through torch) and turns the profilers' errors into hwnas
``UserError`` lines.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .errors import UserError, require
from .spaces import SearchSpace

if TYPE_CHECKING:
    from hwnas_profilers.base import Progress

DEFAULT_CALIBRATION_NETS = 12
MAX_NETS = 1000        # calibration or recalibration networks: each is measured end to end
MAX_BATCH = 4096
# a block's activations next to its input: expansion, skip and output tensors together
# stay well under this many times the network's input at the same batch
ACTIVATION_FACTOR = 64


def cache_dir() -> Path:
    """The user's private cache (:mod:`hwnas_profilers.cachedir`): made 0700, refused in
    one line when another user owns it or others may write it; every entry a command
    reuses from it was written by hwnas and is checked (content hash, seal) on reuse."""
    from hwnas_profilers.fileformat import cache_root

    return cache_root()


def check_work(space: SearchSpace, batch: int, nets: int, flag: str) -> None:
    """Refuse, before any export or measurement, a batch whose activations cannot fit in
    memory and a network count that would run for days."""
    from hwnas_profilers.bounds import check_input

    if isinstance(nets, bool) or not isinstance(nets, int) or not 0 <= nets <= MAX_NETS:
        raise UserError(f"{flag} must be 0 to {MAX_NETS}, got {nets!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise UserError(f"--batch must be 1 to {MAX_BATCH}, got {batch!r}")
    with profiler_errors():
        check_input((batch, space.input[2], space.input[0], space.input[1]),
                    f"--batch {batch}: the activations of {space.name}'s input",
                    itemsize=4 * ACTIVATION_FACTOR)


def bundle_dir(space: SearchSpace, calibration_nets: int, seed: int = 0, batch: int = 1,
               fmt: str = "onnx") -> Path:
    b = f"-b{batch}" if batch != 1 else ""
    f = f"-{fmt}" if fmt != "onnx" else ""
    return cache_dir() / "bundles" / f"{space.name}-{space.id}-n{calibration_nets}-s{seed}{b}{f}"


@contextlib.contextmanager
def profiler_errors(error: type[UserError] = UserError) -> Iterator[None]:
    """Re-raise the profilers' bad-input errors as hwnas ``error`` lines (a UserError or a
    kind of one, such as the engines' EngineError: one line, exit 2)."""
    from hwnas_profilers import ProfilerError

    try:
        yield
    except ProfilerError as exc:
        raise error(" ".join(str(exc).split())) from None


def export_cached_bundle(space: SearchSpace, calibration_nets: int = DEFAULT_CALIBRATION_NETS,
                         seed: int = 0, progress: "Progress | None" = None,
                         batch: int = 1, fmt: str = "onnx", precision: str = "fp32") -> Path:
    """The bundle a backend reads (``fmt``: its ``bundle_format``), exported once into the
    cache; a format converted on the host gets the files of ``precision``."""
    from .bundle import export_bundle

    require("torch", "torch")
    require("onnx", "torch")
    out = bundle_dir(space, calibration_nets, seed, batch, fmt)
    export_bundle(space, out, calibration_nets, seed, progress=progress, batch=batch, fmt=fmt,
                  precisions=(precision,) if fmt != "onnx" else ("fp32",))
    return out


@contextlib.contextmanager
def torch_threads_kept() -> Iterator[None]:
    """The caller's torch thread count, back after the block: for code that sets the
    count for a while in the caller's process (the torch-aoti emitter compiles at the
    engine's count). Profilers give theirs back in ``close()``."""
    import sys

    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        torch = sys.modules.get("torch")
        if torch is not None and n is not None and torch.get_num_threads() != n:
            torch.set_num_threads(n)


def profile_space(space: SearchSpace, backend: str, out: "str | Path", device: str = "cpu",
                  precision: str = "fp32", threads: int = 1, resume: bool = False,
                  calibration_nets: int = DEFAULT_CALIBRATION_NETS, quick: bool = False,
                  progress: "Progress | None" = None,
                  figure: str = "floor", batch: int = 1, mode: str = "",
                  ray: str | None = None, resource: str = "",
                  frontier_nets: int | None = 0) -> dict[str, Any]:
    """Export (cached) and profile ``space``; returns the device table as written.

    ``progress(stage, done, total)`` hears the export (stage ``exporting``), then the
    measuring (``profiling``; with ``ray``, the fleet's events as the stage).

    ``frontier_nets`` more networks, spread along the new table's frontier (block
    multiply-accumulates as the stand-in accuracy score), are then measured with as many
    random ones as ``calibration_nets`` and the lines fitted on both
    (:func:`hwnas.recalibration.calibrate_profiled`); ``None``: the default count where
    that applies (calibration networks, an ONNX bundle, no ``ray``), else none.

    With ``ray`` (a Ray head's HOST:PORT, or ``auto``), ``out`` is a folder and every node
    of that cluster carrying ``resource`` measures the bundle into its own table there
    (:func:`hwnas_profilers.fleet.profile_fleet`); returns the fleet report instead.
    """
    with profiler_errors():
        from hwnas_profilers import Protocol, Settings
        from hwnas_profilers.registry import backend_class

        check_work(space, batch, calibration_nets, "--calibration-nets")
        frontier_nets = _frontier_count(frontier_nets, calibration_nets, backend, ray)
        if ray is None:  # a fleet's nodes have their own core counts
            from hwnas_profilers.bounds import check_threads

            check_threads(threads)
        settings = Settings(device=device, precision=precision, threads=threads, batch=batch,
                            mode=mode)
        from dataclasses import replace

        protocol = replace(Protocol.quick() if quick else Protocol(), figure=figure)
        if ray is not None:
            # the runtime lives on the device nodes, not necessarily here: only the name
            # is checked on the host, each worker loads its runtime (a missing one is named)
            backend_class(backend)
            from hwnas_profilers.fleet import DEFAULT_RESOURCE, _ray, profile_fleet

            _ray()  # Ray missing: one line naming the extra, before anything is exported
            bundle = export_cached_bundle(space, calibration_nets, progress=progress,
                                          batch=batch, precision=precision,
                                          fmt=backend_class(backend).bundle_format)
            return profile_fleet(bundle, backend, out, settings, protocol, address=ray,
                                 resource=resource or DEFAULT_RESOURCE, resume=resume,
                                 progress=progress)
        _profile_here(space, backend, Path(out), settings, protocol, resume, calibration_nets,
                      progress)
    from hwnas_profilers.tablefile import read_table

    from .recalibration import calibrate_profiled

    # the lines, fitted on the calibration networks, fitted again on random and frontier
    # networks measured together; an interrupted phase is redone by --resume
    calibrate_profiled(out, frontier_nets, calibration_nets, quick, space, progress)
    return read_table(Path(out))


def _profile_here(space: SearchSpace, backend: str, out: Path, settings: Any, protocol: Any,
                  resume: bool, calibration_nets: int, progress: "Progress | None") -> None:
    """The bundle measured into ``out`` on this machine (resumed with ``resume``). A finished
    table with nothing left to measure is left as it is: its lines may have been fitted
    since on frontier networks, which fitting them again on the bundle's would undo."""
    from hwnas_profilers import get_profiler, profile_bundle
    from hwnas_profilers.bundle_run import finished_keys, read_manifest, wanted_keys
    from hwnas_profilers.tablefile import read_table

    with get_profiler(backend, settings) as prof:  # a missing runtime fails before exporting
        if out.exists() and not resume:
            raise UserError(f"{out} exists; pass --resume to continue it, or choose another "
                            "--out")
        bundle = export_cached_bundle(space, calibration_nets, progress=progress,
                                      batch=settings.batch, fmt=prof.bundle_format,
                                      precision=settings.precision)
        if out.exists():
            t = read_table(out)
            if t["meta"].get("status") == "complete" and \
                    not wanted_keys(read_manifest(bundle)) - finished_keys(t):
                return
        profile_bundle(bundle, backend, out, settings, protocol, resume=resume,
                       progress=progress, profiler=prof)


def _frontier_count(n: int | None, calibration_nets: int, backend: str, ray: str | None) -> int:
    """The frontier networks a profile measures: ``n`` checked, or for ``None`` the default
    where it applies (random calibration networks to fit with, networks this machine
    measures, ONNX ones)."""
    from .recalibration import DEFAULT_FRONTIER_NETS, needs_onnx_networks

    if n is None:
        applies = calibration_nets >= 2 and ray is None and needs_onnx_networks(backend) is None
        return DEFAULT_FRONTIER_NETS if applies else 0
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NETS:
        raise UserError(f"--frontier-nets must be 0 to {MAX_NETS}, got {n!r}")
    if n == 0:
        return 0
    if ray is not None:
        raise UserError("--frontier-nets measures on this machine; with --ray pass "
                        "--frontier-nets 0 and recalibrate each device's table there "
                        "(hwnas tables recalibrate TABLE --frontier N)")
    if calibration_nets < 2:
        raise UserError(f"--frontier-nets {n} is fitted with the random calibration networks: "
                        "pass --calibration-nets 2 or more, or --frontier-nets 0")
    why = needs_onnx_networks(backend)
    if why:
        raise UserError(f"--frontier-nets: {why}; pass --frontier-nets 0")
    return n


def measure_onnx(model: "str | Path", backend: str, device: str = "cpu", precision: str = "fp32",
                 threads: int = 1, quick: bool = False,
                 input_shape: "tuple[int, ...] | None" = None, iterations: int = 0,
                 duration_s: float = 0.0, trust_code: bool = False) -> dict[str, Any]:
    """One model or engine file (``.onnx``, ``.xml``, ``.plan``, ``.pt2``) end to end; with
    ``iterations`` or ``duration_s``, a fixed count or time instead of the stop rule.
    An AOTInductor package loads only when hwnas built it, or with ``trust_code``
    (:mod:`hwnas_profilers.trust`)."""
    with profiler_errors():
        from hwnas_profilers import Protocol, Settings, measure_model
        from hwnas_profilers.cli import count_protocol
        from hwnas_profilers.trust import code_trusted

        protocol = count_protocol(iterations, duration_s, quick) or (
            Protocol.quick() if quick else Protocol())
        with code_trusted(trust_code):
            return measure_model(model, backend, Settings(device=device, precision=precision,
                                                          threads=threads),
                                 protocol, input_shape=input_shape)
