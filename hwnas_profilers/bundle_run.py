"""Profiling runs: a whole block bundle into a device table, or one model end to end.

A bundle run measures, in the same interleaved rounds, every pending block, the identity
graph (per-call overhead) and the bundle's calibration networks, so that the block sums
and the end-to-end figures they are calibrated against share one noise history. After
every round the finished items are merged into the table on disk (atomic, locked), so an
interrupted run loses at most the round in flight and ``resume`` re-measures nothing
finished; items another process finished meanwhile are dropped from this run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .base import Profiler, ProfilerError, Progress, Runner, Settings
from .calibration import LINE_STATISTICS, Networks, fit_networks, statistic_lines
from .fingerprint import device_fingerprint, fingerprint
from .onnxgraph import write_identity_model  # noqa: F401 - re-exported (tests, callers)
from .protocol import (FIGURES, Protocol, Stats, _one_line, measure_interleaved,
                       reference_floor_with, table_figure)
from .fileformat import FormatError, check_header
from .registry import get_profiler
from .tablefile import (KIND, SCHEMA, check_compatible, locked, merge_write, read_json,
                        read_table, write_json_atomic)

BUNDLE_KIND = "hwnas.block_bundle"
OVERHEAD = "overhead"


@contextlib.contextmanager
def opened(backend: str, settings: Settings | None, profiler: Profiler | None = None
           ) -> Iterator[Profiler]:
    """``profiler`` if given (its owner closes it), else backend ``backend`` opened here
    and closed on the way out, so a library call leaves the process as it found it."""
    if profiler is not None:
        yield profiler
        return
    with get_profiler(backend, settings) as prof:
        yield prof


def read_manifest(bundle_dir: "str | Path") -> dict[str, Any]:
    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise ProfilerError(f"bundle {bundle} is not a directory (export one with: "
                            "hwnas blocks export --space S --out DIR)")
    m = read_json(bundle / "manifest.json", "bundle manifest")
    try:  # the schema version from the one table of formats
        check_header(m, BUNDLE_KIND, f"{bundle}/manifest.json", "block bundle manifest")
    except FormatError as exc:
        raise ProfilerError(str(exc)) from None
    for name in ("blocks", "networks"):
        if not isinstance(m.get(name, []), list):
            raise ProfilerError(f"{bundle}/manifest.json: {name!r} must be a list")
    m = {**m, "blocks": m.get("blocks", []), "networks": m.get("networks", [])}
    for b in m["blocks"]:
        if not isinstance(b, Mapping) or not {"key", "file", "input_shape"} <= set(b):
            raise ProfilerError(f"{bundle}/manifest.json: every block needs key, file, input_shape")
    from .bundlecheck import check_entries

    check_entries(bundle, m)  # names, shapes, and files that stay inside the bundle
    return m


REFERENCE = "2 x (conv 3x3, 16 channels, 32x32, ReLU)"


def load_reference(prof: Profiler, tmp: "str | Path") -> Runner:
    """The reference graph every interleaved run brackets its items with."""
    return prof.load(prof.reference_file(Path(tmp)), (1, 16, 32, 32))


def _reference_store(prof: Profiler) -> Path:
    """Where this machine's best reference floor for one backend setting is remembered
    (the hwnas cache: ``$HWNAS_CACHE`` or ``~/.cache/hwnas``; profilers import no hwnas)."""
    import hashlib

    from .fileformat import cache_root

    root = str(cache_root())
    fp = fingerprint(include_gpu=prof.settings.device != "cpu")
    rt = prof.runtime()
    key = json.dumps([prof.name, rt.get("version"), prof.settings.to_dict(), fp.get("cpu"),
                      fp.get("logical_cores"), [g.get("name") for g in fp.get("gpus", [])]],
                     sort_keys=True)
    return Path(root) / "reference" / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".json")


def reference_hint(store: Path) -> float:
    """The lowest reference floor remembered in ``store`` (:func:`_reference_store`; 0: none)."""
    try:
        d = json.loads(store.read_text())
        v = float(d.get("floor_ms", 0.0))
        return v if v > 0 and v == v else 0.0
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0  # no or unreadable memory: this run's own floor stands


def remember_reference(store: Path, backend: str, floor_ms: float) -> None:
    if not floor_ms > 0:
        return
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with locked(store):
            old = reference_hint(store)
            if old and old <= floor_ms:
                return
            write_json_atomic(store, {"floor_ms": floor_ms, "backend": backend,
                                      "graph": REFERENCE, "date": _now()})
    except OSError:
        pass  # a read-only cache only loses the memory, never a measurement


def measure_with_reference(prof: Profiler, runners: Mapping[str, Runner], protocol: Protocol,
                           on_round=None, ref_log: "list[float] | None" = None,
                           store: Path | None = None) -> tuple[dict[str, Any], float]:
    """``measure_interleaved`` bracketed by the reference graph, on this machine's best
    known reference floor (remembered in ``store``, default :func:`_reference_store`);
    returns (results, the reference floor used)."""
    log: list[float] = ref_log if ref_log is not None else []
    store = store or _reference_store(prof)
    hint = reference_hint(store)
    with tempfile.TemporaryDirectory(prefix="hwnas-ref-") as tmp:
        ref = load_reference(prof, tmp)
        try:
            res = measure_interleaved(runners, protocol, on_round, ref, log, ref_hint=hint)
        finally:
            ref.close()
    remember_reference(store, prof.name, reference_floor_with(log, 0.0))
    return res, reference_floor_with(log, hint)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def table_meta(prof: Profiler, protocol: Protocol, manifest: Mapping[str, Any]) -> dict[str, Any]:
    rt = prof.runtime()
    dev = device_fingerprint(prof.settings.device, include_gpu=True)
    from . import __version__

    return {
        "backend": prof.name, "runtime": rt.get("runtime", prof.name),
        "runtime_version": rt.get("version", "unknown"),
        **{k: v for k, v in rt.items() if k not in ("runtime", "version")},
        "device": dev, **{k: v for k, v in prof.settings.to_dict().items() if k != "device"},
        "space": manifest.get("space", ""), "space_id": manifest.get("space_id", ""),
        "protocol": {**protocol.to_dict(), "timer": prof.timer()},
        "date": _now(), "tool": f"hwnas_profilers {__version__}", "status": "partial",
    }


def new_base(meta: Mapping[str, Any]) -> dict[str, Any]:
    """An empty table with ``meta``: what :func:`~hwnas_profilers.tablefile.merge_write` starts from."""
    return {"schema": SCHEMA, "kind": KIND, "space": meta["space"], "space_id": meta["space_id"],
            "meta": dict(meta), "overhead_ms": 0.0,
            "calibration": {"scale": 1.0, "offset_ms": 0.0, "fitted_on": 0}, "entries": {}}


def open_table(out: Path, meta: Mapping[str, Any], resume: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(base, table on disk): a new table, or the one ``resume`` continues (same identity)."""
    if out.exists() and not resume:
        raise ProfilerError(f"{out} exists; pass --resume to continue it, or choose another --out")
    base = new_base(meta)
    if out.exists():
        check_compatible(out, read_table(out), meta)
    return base, merge_write(out, base)


def finished_keys(t: Mapping[str, Any]) -> set[str]:
    """Item keys (``block:K``, ``net:N``, ``overhead``) a table already holds."""
    keys = {f"block:{k}" for k in t["entries"]}
    keys |= {f"net:{k}" for k in (t["meta"].get("networks") or {})}
    if OVERHEAD in t["meta"]:
        keys.add(OVERHEAD)
    return keys


def wanted_keys(manifest: Mapping[str, Any]) -> set[str]:
    return {f"block:{b['key']}" for b in manifest["blocks"]} | \
           {f"net:{n['name']}" for n in manifest["networks"]} | {OVERHEAD}


def check_batch(bundle: Path, manifest: Mapping[str, Any], batch: int) -> None:
    for b in manifest["blocks"]:
        if int(b["input_shape"][0]) != batch:
            raise ProfilerError(f"bundle {bundle} was exported at batch {b['input_shape'][0]}, "
                                f"not {batch}")


Update = dict  # one round's results, plain JSON types (it crosses processes: hwnas_profilers.fleet)


def measure_pending(prof: Profiler, bundle: Path, manifest: Mapping[str, Any], done: set[str],
                    protocol: Protocol, emit: Callable[[Update], "set[str] | None"]) -> None:
    """Measure every item of ``bundle`` not in ``done``, interleaved, with the reference.

    ``emit`` receives the load failures first, then each round's finished items as an
    update (``entries``, ``nets``, ``meta``, ``reference``: :func:`apply_update` merges
    one into a table) and may return item keys finished elsewhere, which this run drops.
    This is the part that runs on the device: locally in :func:`profile_bundle`, in a Ray
    worker in :mod:`hwnas_profilers.fleet`.
    """
    runners: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    failed_nets: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-profile-") as tmp:
        try:
            if OVERHEAD not in done:
                runners[OVERHEAD] = prof.load(prof.identity_file(Path(tmp)), (1, 1, 1, 1))
            store = _reference_store(prof)
            hint = reference_hint(store)
            for b in manifest["blocks"]:
                if f"block:{b['key']}" in done:
                    continue
                try:
                    runners[f"block:{b['key']}"] = prof.load(bundle / b["file"], b["input_shape"])
                except Exception as exc:  # noqa: BLE001 - recorded as failed, never as zero
                    failed[b["key"]] = {"status": "failed", "reason": _reason(exc)}
            for n in manifest["networks"]:
                if f"net:{n['name']}" in done:
                    continue
                try:
                    runners[f"net:{n['name']}"] = prof.load(bundle / n["file"], n["input_shape"])
                except Exception as exc:  # noqa: BLE001
                    failed_nets[n["name"]] = {"status": "failed", "reason": _reason(exc)}
            if failed or failed_nets:
                emit({"entries": failed, "nets": failed_nets, "meta": {}})
            ref_log: list[float] = []

            def on_round(fin: dict[str, Any]) -> "set[str] | None":
                entries, nets, meta_up = {}, {}, {}
                for key, res in fin.items():
                    rec = res.entry() if isinstance(res, Stats) else {"status": "failed",
                                                                       "reason": res}
                    if key == OVERHEAD:
                        if not isinstance(res, Stats):
                            raise ProfilerError(f"the identity graph does not run on this "
                                                f"backend: {res}")
                        meta_up[OVERHEAD] = rec
                    elif key.startswith("block:"):
                        entries[key[6:]] = rec
                    else:
                        nets[key[4:]] = rec
                upd: Update = {"entries": entries, "nets": nets, "meta": meta_up}
                if ref_log:
                    upd["reference"] = {"calls": len(ref_log),
                                        "floor_ms": reference_floor_with(ref_log, hint),
                                        # this run's own: the host's state while it measured
                                        "run_floor_ms": reference_floor_with(ref_log, 0.0)}
                return emit(upd)

            measure_with_reference(prof, runners, protocol, on_round, ref_log, store)
        finally:
            for r in runners.values():
                r.close()


def apply_update(out: Path, base: Mapping[str, Any], table: Mapping[str, Any],
                 upd: Mapping[str, Any]) -> dict[str, Any]:
    """Merge one :func:`measure_pending` update into the table ``out`` (locked, atomic)."""
    meta_up = dict(upd.get("meta") or {})
    ref = upd.get("reference")
    if ref:
        prior = (table["meta"].get("reference") or {}).get("floor_ms")
        now = float(ref["floor_ms"])
        meta_up["reference"] = {"graph": REFERENCE, "calls": int(ref["calls"]),
                                "floor_ms": round(min(now, prior) if prior else now, 6),
                                "run_floor_ms": round(float(ref["run_floor_ms"]), 6)}
    return merge_write(out, base, upd.get("entries") or {}, meta_up,
                       meta_maps={"networks": upd.get("nets") or {}})


def profile_bundle(bundle_dir: "str | Path", backend: str, out: "str | Path",
                   settings: Settings | None = None, protocol: Protocol | None = None,
                   resume: bool = False, progress: Progress | None = None,
                   profiler: Profiler | None = None) -> dict[str, Any]:
    """Measure every block (and calibration network) of a bundle into the table ``out``."""
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle)
    with opened(backend, settings, profiler) as prof:
        return _profile_bundle(bundle, manifest, prof, Path(out), protocol or Protocol(),
                               resume, progress)


def _profile_bundle(bundle: Path, manifest: Mapping[str, Any], prof: Profiler, out: Path,
                    protocol: Protocol, resume: bool, progress: Progress | None
                    ) -> dict[str, Any]:
    if out.exists() and not resume:
        raise ProfilerError(f"{out} exists; pass --resume to continue it, or choose another --out")
    check_batch(bundle, manifest, prof.settings.batch)
    base, table = open_table(out, table_meta(prof, protocol, manifest), resume)
    wanted = wanted_keys(manifest)

    def tick(t: Mapping[str, Any]) -> None:
        if progress:
            progress("profiling", len(finished_keys(t) & wanted), len(wanted))

    tick(table)

    def emit(upd: Update) -> set[str]:
        nonlocal table
        table = apply_update(out, base, table, upd)
        tick(table)
        return finished_keys(table)  # the caller drops those it still measures

    measure_pending(prof, bundle, manifest, finished_keys(table), protocol, emit)
    return finalize(out, base, manifest)


def finalize(out: Path, base: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Fit the calibration and mark the table complete when everything is measured."""
    table = read_table(out)
    meta = table["meta"]
    keys = [b["key"] for b in manifest["blocks"]]
    if any(k not in table["entries"] for k in keys) or OVERHEAD not in meta:
        return table  # capped run: stays partial, resume goes on
    figure = table_figure(meta)
    ref = (meta.get("reference") or {}).get("floor_ms")
    if ref:  # every ref figure from the table's final reference floor (resumed runs too)
        def rescale(e: Mapping[str, Any]) -> dict[str, Any]:
            e = dict(e)
            if e.get("ref_ratio"):
                e["ref_ms"] = round(float(e["ref_ratio"]) * float(ref), 6)
            return e

        table["entries"] = {k: rescale(e) for k, e in table["entries"].items()}
        meta[OVERHEAD] = rescale(meta[OVERHEAD])
        meta["networks"] = {k: rescale(e) for k, e in (meta.get("networks") or {}).items()}
        table = merge_write(out, base, table["entries"], {OVERHEAD: meta[OVERHEAD]},
                            meta_maps={"networks": meta["networks"]}, replace_entries=True)
        meta = table["meta"]
    # the table's own statistic, and the median and p90 lines each fitted on the same
    # networks' own figures
    networks = {name: _networks(table, manifest, FIGURES[name])
                for name in dict.fromkeys((figure, *LINE_STATISTICS))
                if FIGURES[name] in meta[OVERHEAD]}  # a table of protocol v1 has no p90
    cal = fit_networks(networks[figure])
    cal.update(statistic_lines(figure, networks))
    return merge_write(out, base, meta_updates={"status": "complete", "finished": _now()},
                       top={"overhead_ms": round(networks[figure][0], 6), "calibration": cal})


def _networks(table: Mapping[str, Any], manifest: Mapping[str, Any], field: str) -> Networks:
    """The calibration networks of a finished table in one statistic (``field``): those
    measured whole whose blocks were all measured."""
    meta, entries = table["meta"], table["entries"]
    nets = meta.get("networks") or {}
    found: dict[str, tuple[list[float], float]] = {}
    for n in manifest["networks"]:
        rec = nets.get(n["name"])
        ents = [entries.get(k, {}) for k in n.get("blocks", [])]
        if not rec or rec.get("status") != "ok" or not ents or \
                any(e.get("status") != "ok" or field not in e for e in ents):
            continue
        found[n["name"]] = ([float(e[field]) for e in ents], float(rec[field]))
    return float(meta[OVERHEAD][field]), found


def measure_model(onnx_path: "str | Path", backend: str, settings: Settings | None = None,
                  protocol: Protocol | None = None, input_shape: Sequence[int] | None = None,
                  profiler: Profiler | None = None, sessions: int = 3) -> dict[str, Any]:
    """One model end to end with the bundle protocol; the figure includes the per-call cost.

    The model is loaded ``sessions`` times and the sessions are measured in the same
    interleaved rounds; the figure (``protocol.figure``, the table's statistic) is the
    fastest session's. Why: on a shared
    2-core host one model's fresh ONNX Runtime sessions settled at either 0.176 or
    0.24 ms (tight within each session), a placement effect of the session, not of the
    model; the fastest of a few sessions is the repeatable figure.
    """
    models, _ = measure_models({"model": (onnx_path, input_shape)}, backend, settings,
                               protocol, profiler, sessions)
    return models["model"]


def measure_models(models: Mapping[str, tuple["str | Path", Sequence[int] | None]],
                   backend: str, settings: Settings | None = None,
                   protocol: Protocol | None = None, profiler: Profiler | None = None,
                   sessions: int = 3,
                   others: Mapping[str, tuple["str | Path", Sequence[int] | None]] | None = None
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Several models (each :func:`measure_model`'s way: ``sessions`` sessions, the
    fastest one's figure) and ``others`` (one session each, key -> Stats or the reason it
    failed) in one interleaved run: one noise history, one wait for the protocol's span.
    A model that cannot load or run is bad input (raises); an ``other`` is recorded."""
    with opened(backend, settings, profiler) as prof:
        return _measure_models(models, prof, protocol or Protocol(), sessions, others or {})


def _measure_models(models: Mapping[str, tuple["str | Path", Sequence[int] | None]],
                    prof: Profiler, protocol: Protocol, sessions: int,
                    others: Mapping[str, tuple["str | Path", Sequence[int] | None]]
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    backend = prof.name
    if sessions < 1:
        raise ProfilerError("sessions must be >= 1")
    for p, _ in models.values():
        path = Path(p)
        if not path.is_file():
            raise ProfilerError(f"model {path} does not exist")
        if path.suffix.lower() not in prof.model_suffixes:
            raise ProfilerError(f"backend {prof.name!r} cannot load {path.name}: it reads "
                                f"{', '.join(prof.model_suffixes)} files")
    runners: dict[str, Runner] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-measure-") as tmp:
        try:
            for label, (p, shape) in models.items():
                for i in range(sessions):
                    try:
                        runners[f"model:{label}#{i}"] = prof.load(Path(p), shape)
                    except ProfilerError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - the runtime's own error: bad model
                        raise ProfilerError(f"{backend} cannot load {p}: {_reason(exc)}") from None
            for key, (p, shape) in others.items():
                try:
                    runners[f"other:{key}"] = prof.load(Path(p), shape)
                except Exception as exc:  # noqa: BLE001 - recorded, never as zero
                    failed[key] = _reason(exc)
            runners[OVERHEAD] = prof.load(prof.identity_file(Path(tmp)), (1, 1, 1, 1))
            ref_log: list[float] = []
            res, ref_floor = measure_with_reference(prof, runners, protocol, ref_log=ref_log)
        finally:
            for r in runners.values():
                r.close()
    over = res[OVERHEAD]
    meta = table_meta(prof, protocol, {})
    for k in ("space", "space_id", "status"):
        meta.pop(k, None)
    out: dict[str, dict[str, Any]] = {}
    for label, (p, shape) in models.items():
        stats = [res[f"model:{label}#{i}"] for i in range(sessions)]
        bad = [s for s in stats if not isinstance(s, Stats)]
        if bad:
            raise ProfilerError(f"{backend} cannot run {p}: {bad[0]}")
        model = min(stats, key=lambda s: s.figure(protocol.figure))
        batch = int(shape[0]) if shape else prof.settings.batch
        fig = model.figure(protocol.figure)
        out[label] = {
            "model": str(p), **model.entry(), "figure": protocol.figure,
            "figure_ms": round(fig, 6), "batch": batch,
            "throughput_ips": round(batch * 1000.0 / fig, 3) if fig > 0 else None,
            "session_figures_ms": [round(s.figure(protocol.figure), 6) for s in stats],
            "overhead_ms": over.figure(protocol.figure) if isinstance(over, Stats) else None,
            "reference_floor_ms": round(ref_floor, 6),
            "reference_run_floor_ms": round(reference_floor_with(ref_log, 0.0), 6),
            "meta": meta}
    rest = {k[6:]: v for k, v in res.items() if k.startswith("other:")}
    rest.update(failed)
    return out, rest


def _reason(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {_one_line(exc)}"
