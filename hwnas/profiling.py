"""Host-side profiling: export a space's block bundle to a cache, then run ``hwnas_profilers``.

The device-side package does the measuring; this module only adds what needs hwnas
(the space, the ONNX export through torch) and turns the profilers' errors into hwnas
``UserError`` lines.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

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
def profiler_errors() -> Iterator[None]:
    """Re-raise the profilers' bad-input errors as hwnas UserErrors (one line, exit 2)."""
    from hwnas_profilers import ProfilerError

    try:
        yield
    except ProfilerError as exc:
        raise UserError(" ".join(str(exc).split())) from None


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
                  ray: str | None = None, resource: str = "") -> dict[str, Any]:
    """Export (cached) and profile ``space``; returns the device table as written.

    ``progress(stage, done, total)`` hears the export (stage ``exporting``), then the
    measuring (``profiling``; with ``ray``, the fleet's events as the stage).

    With ``ray`` (a Ray head's HOST:PORT, or ``auto``), ``out`` is a folder and every node
    of that cluster carrying ``resource`` measures the bundle into its own table there
    (:func:`hwnas_profilers.fleet.profile_fleet`); returns the fleet report instead.
    """
    with profiler_errors():
        from hwnas_profilers import Protocol, Settings, get_profiler, profile_bundle
        from hwnas_profilers.registry import backend_class

        check_work(space, batch, calibration_nets, "--calibration-nets")
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
        with get_profiler(backend, settings) as prof:  # a missing runtime fails before exporting
            out = Path(out)
            if out.exists() and not resume:
                raise UserError(f"{out} exists; pass --resume to continue it, or choose another "
                                "--out")
            bundle = export_cached_bundle(space, calibration_nets, progress=progress,
                                          batch=batch, fmt=prof.bundle_format,
                                          precision=precision)
            return profile_bundle(bundle, backend, out, settings, protocol, resume=resume,
                                  progress=progress, profiler=prof)


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


def recalibrate_table(table_path: "str | Path", out: "str | Path", nets: int = 8, seed: int = 1,
                      quick: bool = False, space: SearchSpace | None = None,
                      progress: "Progress | None" = None, frontier: int = 0,
                      accuracy: Any = None) -> dict[str, Any]:
    """Re-fit a table's calibration on ``nets`` whole networks measured here and now.

    The blocks are not re-measured: a table from an identical machine, or from this host in
    another load phase, differs mostly by one factor over whole networks (measured: a
    shipped H100 table 34% low on another H100 machine, 100% within +-10% after one fitted
    scale), so ``nets`` random architectures of the table's space are timed end to end with
    the table's own backend, settings and statistic, interleaved, and the calibration line
    is fitted anew (``hwnas_profilers.calibration``; the p90 "upper"
    line too). The entries stay as measured; the table records the recalibration (when,
    where, on which nets, the old calibration's error on them) and its fingerprint becomes
    this machine's, the one it now predicts.

    ``frontier`` more networks are spread along the table's own accuracy-latency frontier
    (``accuracy``, or block multiply-accumulates as a stand-in score): the networks a search
    picks are not random ones, and a line fitted on random networks alone predicted the
    int8 frontier of one table 12-15% high (benchmarks/frontier_fidelity.py); each group's
    error is recorded apart.
    """
    import time

    from .arch import sample_architecture

    t_start = time.perf_counter()
    table, sp = _recalibration_subject(table_path, nets, space)
    backend = str(table.meta.get("backend", ""))
    with profiler_errors():
        from hwnas_profilers import get_profiler
        from hwnas_profilers.protocol import Stats

        settings = _table_settings(table_path, table.meta)
        check_work(sp, settings.batch, nets, "--nets")
        archs = [sample_architecture(sp, seed=1_000_003 * seed + i) for i in range(nets)]
        archs += frontier_networks(table, sp, frontier, accuracy)
        prof = get_profiler(backend, settings)  # a missing runtime fails here, naming the extra
        res = _measure_networks(prof, table, sp, archs, seed, quick, progress)
    bad = {k: v for k, v in res.items() if not isinstance(v, Stats)}
    if bad:
        k, why = next(iter(bad.items()))
        raise UserError(f"{backend} could not run {k} of the recalibration: {why}")
    new, record = _refitted(table, sp, archs, res, settings.device, seed, t_start, nets)
    new.save(out)
    return {"table": str(out), **record}


def frontier_networks(table: Any, sp: SearchSpace, n: int, accuracy: Any = None) -> list:
    """``n`` networks spread evenly over the latency range of the frontier of ``table`` and
    ``accuracy`` (default: block multiply-accumulates as a stand-in score)."""
    if n <= 0:
        return []
    if n > MAX_NETS:
        raise UserError(f"--frontier must be at most {MAX_NETS}, got {n}")
    from .solver import frontier as solve
    from .tables.crossruntime import macs_scores

    front = solve(accuracy if accuracy is not None else macs_scores(sp), table)
    archs = front.architectures()
    picks = sorted({round(k * (len(archs) - 1) / max(n - 1, 1)) for k in range(n)})
    return [archs[i] for i in picks]


def _recalibration_subject(table_path: "str | Path", nets: int, space: SearchSpace | None
                           ) -> tuple[Any, SearchSpace]:
    """The table and its space, when the table can be recalibrated with ``nets`` networks."""
    from .spaces import find_space_by_id
    from .tables.device import load_device_table

    table = load_device_table(table_path)
    meta = table.meta
    if nets < 2:
        raise UserError("--nets must be at least 2 (one scale from one network has no check)")
    if nets > MAX_NETS:
        raise UserError(f"--nets must be at most {MAX_NETS}, got {nets}")
    if str(meta.get("source", "")).startswith("imported"):
        raise UserError(f"{table_path} was imported from another tool's lookup table; there is "
                        "no backend to re-measure it with: profile the space on this device")
    if meta.get("status") not in (None, "complete"):
        raise UserError(f"{table_path} is not complete (status {meta.get('status')!r}); resume "
                        "its profiling first")
    sp = space or (find_space_by_id(table.space_id) if table.space_id else None)
    if sp is None:
        raise UserError(f"{table_path} names space {table.space or '?'} ({table.space_id or 'no id'}), "
                        "which is not built in; pass --space FILE")
    if table.space_id and sp.id != table.space_id:
        raise UserError(f"space {sp.name} ({sp.id}) is not the table's ({table.space_id})")
    return table, sp


def _table_settings(table_path: "str | Path", meta: Mapping[str, Any]) -> Any:
    """The profiler settings a table was measured with (device, precision, threads, batch,
    mode), to measure its networks the same way."""
    from hwnas_profilers import Settings

    dev = meta.get("device") if isinstance(meta.get("device"), dict) else {}
    try:
        return Settings(device=str(dev.get("target", "cpu")),
                        precision=str(meta.get("precision", "fp32")),
                        threads=int(meta.get("threads", 1)),
                        batch=int(meta.get("batch", 1)),
                        # the backend itself refuses a mode it does not have
                        mode=str(meta.get("mode") or ""))
    except (TypeError, ValueError):
        raise UserError(f"{table_path}: its settings (threads/batch) are not numbers") from None


def _measure_networks(prof: Any, table: Any, sp: SearchSpace, archs: list, seed: int,
                      quick: bool, progress: "Progress | None") -> dict[str, Any]:
    """``archs`` exported (cached) and timed end to end, interleaved, by ``prof`` in the
    table's statistic; closes ``prof``."""
    from dataclasses import replace

    from hwnas_profilers import Protocol
    from hwnas_profilers.bundle_run import measure_with_reference

    settings, nets, figure = prof.settings, len(archs), table.figure
    runners: dict[str, Any] = {}
    try:
        require("torch", "torch")
        ndir = cache_dir() / "recalibrate" / f"{sp.name}-{sp.id}-s{seed}-b{settings.batch}"
        from .nn.export import export_architecture

        shape = (settings.batch, sp.input[2], sp.input[0], sp.input[1])
        tick = progress or (lambda stage, done, total: None)
        for i, a in enumerate(archs):
            # named by content too: a frontier network differs from table to table
            tag = hashlib.sha256(",".join(a.choices).encode()).hexdigest()[:10]
            f = ndir / f"net{i:03d}-{tag}.onnx"
            if not f.is_file():
                export_architecture(sp, a, f, batch=settings.batch)
            runners[f"net{i:03d}"] = prof.load(f, shape)
            tick(f"exporting {nets} networks of {sp.name}", i + 1, nets)
        protocol = replace(Protocol.quick() if quick else Protocol(), figure=figure)
        stage = f"measuring {nets} networks end to end ({table.meta.get('backend', '')} " \
            f"{settings.precision}, {figure})"
        tick(stage, 0, 1)
        res, _ = measure_with_reference(prof, runners, protocol)
        tick(stage, 1, 1)
        return res
    finally:
        for r in runners.values():
            r.close()
        prof.close()


def _refitted(table: Any, sp: SearchSpace, archs: list, res: Mapping[str, Any], device: str,
              seed: int, t_start: float, random_nets: int | None = None
              ) -> tuple[Any, dict[str, Any]]:
    """The table with its calibration fitted anew on the measured networks, its fingerprint
    this machine's, and the record of the recalibration it now carries."""
    import datetime as _dt
    import time
    from dataclasses import replace

    import numpy as np

    from hwnas_profilers.calibration import errors, fit_calibration, report
    from hwnas_profilers.fingerprint import device_fingerprint

    from .tables.device import Calibration

    meta = dict(table.meta)
    dev = meta.get("device") if isinstance(meta.get("device"), dict) else {}
    names = [f"net{i:03d}" for i in range(len(archs))]
    additive = [table.predict(sp, a).additive_ms for a in archs]
    measured = [res[n].figure(table.figure) for n in names]
    old = table.calibration
    before = report(errors(old.scale, old.offset_ms, np.asarray(additive), np.asarray(measured)))
    cal = fit_calibration(additive, measured, names)
    cal.update(_statistic_lines(table, sp, archs, [res[n] for n in names]))
    k = len(archs) if random_nets is None else random_nets
    if k < len(archs):  # each group's error, before and after (in-sample)
        a, m = np.asarray(additive), np.asarray(measured)
        cal["groups"] = {g: {"nets": int(len(a[s])),
                             "before": report(errors(old.scale, old.offset_ms, a[s], m[s])),
                             "after": report(errors(cal["scale"], cal["offset_ms"], a[s], m[s]))}
                         for g, s in (("random", slice(0, k)), ("frontier", slice(k, None)))}
    here = device_fingerprint(device)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    record = {"date": now, "nets": len(archs), "seed": seed, "figure": table.figure,
              "device": here, "previous_device": dev,
              "previous_calibration": old.to_dict(), "previous_error_on_these_nets": before,
              "fit": {k: v for k, v in cal.items() if k != "networks"},
              "seconds": round(time.perf_counter() - t_start, 3)}
    meta["recalibrations"] = list(meta.get("recalibrations") or []) + [record]
    meta.setdefault("profiled_on", dev)
    meta["device"] = here
    return replace(table, meta=meta, calibration=Calibration.from_dict(cal)), record


def _statistic_lines(table: Any, sp: Any, archs: list, stats: list) -> dict[str, Any]:
    """The median and p90 lines refitted on the recalibration's networks (each statistic on
    its own figures), where the table has per-block figures of that statistic."""
    from hwnas_profilers.calibration import fit_calibration, stat_line
    from hwnas_profilers.protocol import FIGURES

    lines: dict[str, Any] = {}
    for name in ("median", "p90"):
        if name == table.figure:
            continue
        over = (table.line(name) or (None, None, None))[2]
        if over is None:  # no line yet: the per-call overhead measured in that statistic
            rec = table.meta.get("overhead")
            over = rec.get(FIGURES[name]) if isinstance(rec, Mapping) else None
        if not isinstance(over, (int, float)):
            continue
        vals = [[table.entries[b.key()].value(FIGURES[name]) for b in a.blocks(sp)]
                for a in archs]
        if any(v is None for row in vals for v in row):
            continue
        add = [over + sum(max(v - over, 0.0) for v in row) for row in vals]
        fit = fit_calibration(add, [getattr(st, FIGURES[name]) for st in stats])
        lines[name] = stat_line(name, over, fit)
    out: dict[str, Any] = {"lines": lines} if lines else {}
    if "p90" in lines:
        out["upper"] = {k: lines["p90"][k] for k in
                        ("figure", "scale", "offset_ms", "overhead_ms", "loo_within_10pct")}
    return out


def add_statistic_lines(table: Any, seed: int = 0) -> Any:
    """``table`` with median and p90 lines fitted on the calibration networks it already
    recorded (``meta.networks``; the bundle's networks are drawn from ``seed``), measuring
    nothing. Refuses when the networks of that seed do not reproduce the table's own line:
    then they are not the networks it was fitted on."""
    import math
    from dataclasses import replace as _replace
    from types import SimpleNamespace

    from hwnas_profilers.calibration import fit_calibration
    from hwnas_profilers.protocol import FIGURES

    from .arch import sample_architecture
    from .spaces import load_space
    from .tables.device import Calibration

    nets = table.meta.get("networks") if isinstance(table.meta, Mapping) else None
    if not isinstance(nets, Mapping) or len(nets) < 3 or not table.space:
        raise UserError("the table records no calibration networks to fit lines on")
    sp = load_space(table.space)
    names = sorted(n for n, r in nets.items() if isinstance(r, Mapping) and r.get("status") == "ok")
    archs = [sample_architecture(sp, seed=seed * 1000 + int(n[3:])) for n in names]
    stats = [SimpleNamespace(**{k: v for k, v in nets[n].items() if k.endswith("_ms")})
             for n in names]
    own = [table.predict(a, sp).additive_ms for a in archs]
    fit = fit_calibration(own, [getattr(st, FIGURES[table.figure]) for st in stats])
    if not (math.isclose(fit["scale"], table.calibration.scale, rel_tol=1e-6) and
            math.isclose(fit["offset_ms"], table.calibration.offset_ms, abs_tol=1e-6)):
        raise UserError(f"the networks of seed {seed} do not reproduce the table's own "
                        "calibration: they are not the ones it was fitted on")
    cal = table.calibration.to_dict()
    cal.update(_statistic_lines(table, sp, archs, stats))
    return _replace(table, calibration=Calibration.from_dict(cal))
