"""A device table's calibration line(s) fitted anew on whole networks measured here.

The blocks are not re-measured: a table from an identical machine, or from this host in
another load phase, differs mostly by one factor over whole networks, so a few networks
are timed end to end with the table's own backend, settings and statistic, interleaved,
and the lines are fitted anew (:mod:`hwnas_profilers.calibration`). Three callers:

- ``hwnas tables recalibrate``: random networks, and ``--frontier N`` more spread along
  the table's own frontier;
- ``hwnas profile``: after the blocks, ``--frontier-nets N`` networks of the new table's
  frontier (block multiply-accumulates as the stand-in accuracy score) with random ones;
- ``hwnas run``: the run's own frontier (its accuracy table) before engines are chosen.

The networks a search picks are not random ones: a line fitted on random networks alone
predicted the int8 frontier of one table 14-15% high, and one fitted on both groups held
both (benchmarks/frontier_fidelity.py). Each group's error is recorded apart, held out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .errors import UserError, require
from .profiling import MAX_NETS, cache_dir, check_work, profiler_errors
from .spaces import SearchSpace

if TYPE_CHECKING:
    from hwnas_profilers.base import Progress

DEFAULT_FRONTIER_NETS = 8  # hwnas profile's and hwnas run's frontier networks
RUN_RANDOM_NETS = 8        # random networks measured beside the run's frontier ones


def recalibrate_table(table_path: "str | Path", out: "str | Path", nets: int = 8, seed: int = 1,
                      quick: bool = False, space: SearchSpace | None = None,
                      progress: "Progress | None" = None, frontier: int = 0,
                      accuracy: Any = None, by: str = "hwnas tables recalibrate",
                      note: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Re-fit a table's calibration on ``nets`` whole networks measured here and now.

    A shipped H100 table was 34% low on another H100 machine and 100% within +-10% after
    one fitted scale: ``nets`` random architectures of the table's space are timed end to
    end and the calibration line is fitted anew, with the median and p90 lines. The entries
    stay as measured; the table records the recalibration (when, where, by what, on which
    nets, the old calibration's error on them, ``note``) and its fingerprint becomes this
    machine's, the one it now predicts.

    ``frontier`` more networks are spread along the table's own accuracy-latency frontier
    (``accuracy``, or block multiply-accumulates as a stand-in score) and fitted with the
    random ones; each group's error (before, after, held out) is recorded apart.
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
        front = frontier_networks(table, sp, frontier, accuracy)
        prof = get_profiler(backend, settings)  # a missing runtime fails here, naming the extra
        res = _measure_networks(prof, table, sp, archs + front, seed, quick, progress)
    bad = {k: v for k, v in res.items() if not isinstance(v, Stats)}
    if bad:
        k, why = next(iter(bad.items()))
        raise UserError(f"{backend} could not run {k} of the recalibration: {why}")
    extra = {"by": by, "frontier_from": _frontier_source(accuracy) if front else None,
             **dict(note or {})}
    new, record = _refitted(table, sp, archs + front, res, settings.device, seed, t_start,
                            nets, extra)
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


def _frontier_source(accuracy: Any) -> str:
    if accuracy is None:
        return "block multiply-accumulates (stand-in accuracy score)"
    src = (getattr(accuracy, "provenance", None) or {}).get("source")
    return f"accuracy table ({src})" if src else "accuracy table"


def frontier_calibrated(table: Any) -> bool:
    """Whether ``table``'s calibration line was fitted with frontier networks."""
    groups = dict(table.calibration.report).get("groups")
    return isinstance(groups, Mapping) and "frontier" in groups


def needs_onnx_networks(backend: str) -> str | None:
    """Why a table of ``backend`` cannot be recalibrated here (its profiler reads another
    bundle format than the ONNX networks recalibration exports), or None."""
    with profiler_errors():
        from hwnas_profilers.registry import backend_class

        fmt = backend_class(backend).bundle_format
    if fmt == "onnx":
        return None
    return (f"{backend} reads {fmt} files, and recalibration exports its whole networks as "
            "ONNX only")


def calibrate_profiled(table_path: "str | Path", frontier_nets: int, nets: int,
                       quick: bool = False, space: SearchSpace | None = None,
                       progress: "Progress | None" = None) -> dict[str, Any] | None:
    """``hwnas profile``'s last phase: the finished table's lines fitted on ``nets`` random
    and ``frontier_nets`` frontier networks measured together (its frontier with block
    multiply-accumulates as the stand-in score). None when there is nothing to do: no
    frontier networks asked, a table still partial (a capped run), or one whose line
    already holds frontier networks (a resumed run that finished this phase)."""
    from .tables.device import load_device_table

    if frontier_nets <= 0:
        return None
    table = load_device_table(table_path, check_machine=False)
    if table.meta.get("status") != "complete" or frontier_calibrated(table):
        return None
    return recalibrate_table(table_path, table_path, nets, 1, quick, space, progress,
                             frontier_nets, by="hwnas profile")


def summary_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A recalibration record in short: when, on how many random and frontier networks, in
    how many seconds, and each group's held-out error (with its network count)."""
    groups = (record.get("fit") or {}).get("groups") or {}
    return {"date": record.get("date"), "random_nets": record.get("random_nets"),
            "frontier_nets": record.get("frontier_nets"), "seconds": record.get("seconds"),
            "groups": {g: {"nets": e.get("nets"), **e["held_out"]}
                       for g, e in groups.items() if e.get("held_out")}}


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
              seed: int, t_start: float, random_nets: int | None = None,
              extra: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
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
    if k < len(archs):
        cal["groups"] = group_errors(old, cal, additive, measured,
                                     {"random": slice(0, k), "frontier": slice(k, None)})
    here = device_fingerprint(device)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    record = {"date": now, **dict(extra or {}), "nets": len(archs), "random_nets": k,
              "frontier_nets": len(archs) - k, "seed": seed, "figure": table.figure,
              "device": here, "previous_device": dev,
              "previous_calibration": old.to_dict(), "previous_error_on_these_nets": before,
              "fit": {key: v for key, v in cal.items() if key != "networks"},
              "seconds": round(time.perf_counter() - t_start, 3)}
    meta["recalibrations"] = list(meta.get("recalibrations") or []) + [record]
    meta.setdefault("profiled_on", dev)
    meta["device"] = here
    return replace(table, meta=meta, calibration=Calibration.from_dict(cal)), record


def group_errors(old: Any, cal: Mapping[str, Any], additive: Sequence[float],
                 measured: Sequence[float], groups: Mapping[str, slice]) -> dict[str, Any]:
    """Each group's error: ``before`` (the old line ``old``), ``after`` (the new line
    ``cal``, in sample) and ``held_out`` (each network predicted by a line fitted, the same
    way, on all the other networks of every group)."""
    import numpy as np

    from hwnas_profilers.calibration import errors, fit_calibration, report

    a, m = np.asarray(additive, dtype=float), np.asarray(measured, dtype=float)
    held = np.empty(len(a))
    for i in range(len(a)):
        keep = np.arange(len(a)) != i
        f = fit_calibration(a[keep], m[keep])
        held[i] = errors(f["scale"], f["offset_ms"], a[i:i + 1], m[i:i + 1])[0]
    return {g: {"nets": int(len(a[s])),
                "before": report(errors(old.scale, old.offset_ms, a[s], m[s])),
                "after": report(errors(cal["scale"], cal["offset_ms"], a[s], m[s])),
                "held_out": report(held[s])}
            for g, s in groups.items() if len(a[s])}


def _statistic_lines(table: Any, sp: Any, archs: list, stats: list) -> dict[str, Any]:
    """The median and p90 lines refitted on the recalibration's networks (each statistic on
    its own figures, by :func:`hwnas_profilers.calibration.statistic_lines`, the fit of the
    lines a profiling run ends with), where the table has per-block figures of that
    statistic; nothing when it has none."""
    from hwnas_profilers.calibration import LINE_STATISTICS, Networks, statistic_lines
    from hwnas_profilers.protocol import FIGURES

    networks: dict[str, Networks] = {}
    for name in LINE_STATISTICS:
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
        networks[name] = (over, {f"net{i:03d}": (row, getattr(st, FIGURES[name]))
                                 for i, (row, st) in enumerate(zip(vals, stats))})
    out = statistic_lines(table.figure, networks)
    return out if out["lines"] else {}


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
