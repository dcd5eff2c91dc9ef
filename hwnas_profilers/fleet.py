"""Fleet profiling on Ray: one block bundle measured on many devices at once.

Each device is a Ray node that carries a named custom resource (``ray start --resources
'{"hwnas-device": 1}'``, one node per physical device; a node label ``hwnas-device=NAME``
names it, else its hostname). For every such node the host starts one :class:`DeviceWorker`
actor pinned to that node (``NodeAffinitySchedulingStrategy``, not soft) that holds the
node's whole unit of the resource, so two runs never measure on one device at once, and
an actor runs one method at a time, so the blocks of a device are never measured
concurrently with each other: the interleaved protocol of :mod:`hwnas_profilers.bundle_run` runs
unchanged inside the actor. The worker imports this device-side package and its runtime
only (no torch, no hwnas).

What Ray does for us: placement on the named nodes, the transfer of the bundle (one
``ray.put``, fetched by each node's object store), streaming each round's results back
(a Ray generator), and telling a dead worker or node from a live one. What it does not,
written here: the one-table-per-device bookkeeping, and the retry policy: a worker that
dies or stops reporting is replaced by a fresh actor on the same node, which resumes from
the table on the host (every finished round was merged there as it arrived, so nothing
finished is measured again and nothing is lost), up to ``retries`` times.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from .base import ProfilerError, Progress, Settings
from .protocol import Protocol

DEFAULT_RESOURCE = "hwnas-device"
LABEL = "hwnas-device"  # node label that names a device (else the node's hostname)
HEARTBEAT_S = 5.0
class FleetError(ProfilerError):
    """A fleet run that could not finish every device (the finished tables are kept)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ProfilerError("fleet profiling needs Ray, which is not installed: "
                            "pip install 'hwnas[ray]' (on the host and on every device node)") from None
    return ray


# ---------------------------------------------------------------------------- the device side


class DeviceWorker:
    """Runs on one device node (wrapped by ``ray.remote`` at run time, so importing this
    module needs no Ray). Stateless apart from the staged bundle."""

    def __init__(self, backend: str, settings: Mapping[str, Any], protocol: Mapping[str, Any]):
        self.backend = backend
        self.settings = dict(settings)
        self.protocol = dict(protocol)
        self.bundle: Path | None = None
        self._prof = None

    def _profiler(self):
        if self._prof is None:
            from .registry import get_profiler

            s = self.settings
            self._prof = get_profiler(self.backend, Settings(
                device=s["device"], precision=s["precision"], threads=s["threads"],
                batch=s["batch"], mode=s.get("mode", "")))
        return self._prof

    def info(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """This device's table meta (runtime, fingerprint), and what the process loaded."""
        from .bundle_run import table_meta

        prof = self._profiler()  # a missing runtime on this node fails here, naming the extra
        meta = table_meta(prof, Protocol(**self.protocol), manifest)
        return {"meta": meta, "pid": os.getpid(), "host": socket.gethostname(),
                "torch_loaded": "torch" in sys.modules, "hwnas_loaded": "hwnas" in sys.modules}

    def stage(self, bundle_id: str, files: Mapping[str, bytes]) -> str:
        """Write the bundle into this node's cache (once per bundle content)."""
        from .fileformat import cache_root, write_bytes_atomic

        root = cache_root() / "fleet" / bundle_id
        marker = root / ".complete"
        if not marker.is_file():
            for rel, data in files.items():
                write_bytes_atomic(root / rel, data)
            write_bytes_atomic(marker, b"")
        self.bundle = root
        return str(root)

    def measure(self, done: list, heartbeat_s: float = HEARTBEAT_S) -> Iterator[dict[str, Any]]:
        """Measure the staged bundle's items not in ``done``; yields each round's update
        (:func:`hwnas_profilers.bundle_run.measure_pending`) and a heartbeat while nothing finishes."""
        from .bundle_run import measure_pending, read_manifest

        if self.bundle is None:
            raise ProfilerError("no bundle staged on this worker")
        prof = self._profiler()
        manifest = read_manifest(self.bundle)
        q: "queue.Queue[tuple[str, Any]]" = queue.Queue()
        t0 = time.perf_counter()

        def emit(upd: dict) -> None:
            q.put(("update", {**upd, "worker_s": round(time.perf_counter() - t0, 3)}))

        def run() -> None:
            try:
                measure_pending(prof, self.bundle, manifest, set(done),
                                Protocol(**self.protocol), emit)
                q.put(("end", None))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the generator below
                q.put(("error", exc))

        # the protocol runs in a thread so the generator can report while it measures;
        # this thread only waits on the queue, so it takes no CPU from the measurement
        th = threading.Thread(target=run, name="hwnas-measure", daemon=True)
        th.start()
        while True:
            try:
                kind, val = q.get(timeout=heartbeat_s)
            except queue.Empty:
                yield {"heartbeat": True, "worker_s": round(time.perf_counter() - t0, 3)}
                continue
            if kind == "update":
                yield val
            elif kind == "error":
                raise val
            else:
                return

    def pid(self) -> int:
        return os.getpid()


# ------------------------------------------------------------------------------ the host side


@dataclass
class Device:
    name: str
    node_id: str
    out: Path
    actor: Any = None
    gen: Any = None
    base: dict = field(default_factory=dict)
    table: dict = field(default_factory=dict)
    attempts: int = 0
    last_seen: float = 0.0
    started: float = 0.0
    ended: float = 0.0
    worker_s: float = 0.0   # the worker's own measuring time, all attempts
    attempt_s: float = 0.0  # ... of the attempt in flight
    state: str = "pending"  # pending, measuring, done, failed
    reason: str = ""
    pids: list = field(default_factory=list)


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an unreachable cluster address at once (``ray.init`` retries for minutes)."""
    if address in ("auto", "local"):
        return
    m = re.fullmatch(r"(?:ray://)?\[?([^\]\s]+?)\]?:(\d{1,5})", address)
    if not m:
        raise ProfilerError(f"--ray {address!r}: expected HOST:PORT of a Ray head "
                            "(as printed by `ray start --head`), or 'auto'")
    try:
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ProfilerError(f"cannot reach the Ray cluster at {address}: "
                            f"{exc.strerror or exc.__class__.__name__} (start its head with "
                            "`ray start --head`, or check the address)") from None


def device_nodes(nodes: list, resource: str) -> list[tuple[str, str]]:
    """(device name, node id) of every live node carrying ``resource`` (sorted by name).

    The name is the node's ``hwnas-device`` label, else its hostname; two nodes with one
    name get their node id appended (such names change when a node restarts: label the
    nodes for a fleet run that must resume)."""
    found = []
    for n in nodes:
        if not n.get("Alive") or float((n.get("Resources") or {}).get(resource, 0)) < 1:
            continue
        labels = n.get("Labels") or {}
        name = str(labels.get(LABEL) or n.get("NodeManagerHostname") or n["NodeID"][:12])
        found.append((re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:64] or "device", n["NodeID"]))
    counts: dict[str, int] = {}
    for name, _ in found:
        counts[name] = counts.get(name, 0) + 1
    return sorted((f"{name}-{nid[:8]}" if counts[name] > 1 else name, nid) for name, nid in found)


def bundle_files(bundle: Path, manifest: Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """The bundle's files (manifest, blocks, networks) and a content id."""
    rels = ["manifest.json"] + [b["file"] for b in manifest["blocks"]] + \
        [n["file"] for n in manifest["networks"]]
    files: dict[str, bytes] = {}
    h = hashlib.sha256()
    for rel in rels:
        p = (bundle / rel).resolve()
        if bundle.resolve() not in p.parents:
            raise ProfilerError(f"{bundle}/manifest.json names a file outside the bundle: {rel!r}")
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ProfilerError(f"bundle file {p} cannot be read: {exc.strerror}") from None
        files[rel] = data
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:20], files


_LOST = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError",
         "NodeDiedError", "ObjectLostError", "OwnerDiedError", "ObjectFetchTimedOutError",
         "ObjectReconstructionFailedError", "LocalRayletDiedError", "RaySystemError")


def _is_lost(exc: BaseException) -> bool:
    """A worker or node that died (retry), as opposed to an error the worker raised."""
    return any(c.__name__ in _LOST for c in type(exc).__mro__)


def _cause(exc: BaseException) -> BaseException:
    """The worker's own exception inside a RayTaskError."""
    return getattr(exc, "cause", None) or exc


def profile_fleet(bundle_dir: "str | Path", backend: str, out_dir: "str | Path",
                  settings: Settings | None = None, protocol: Protocol | None = None,
                  address: str = "auto", resource: str = DEFAULT_RESOURCE, resume: bool = False,
                  progress: Progress | None = None, retries: int = 3,
                  lost_after_s: float = 120.0, heartbeat_s: float = HEARTBEAT_S,
                  devices: "list[str] | None" = None) -> dict[str, Any]:
    """Measure the bundle on every device of the cluster; one table per device in ``out_dir``.

    Returns ``{"tables": {name: path}, "devices": {name: {...}}}`` with each device's
    attempts, wall time and the worker's own measuring time. A device that failed (its
    runtime missing, or lost more than ``retries`` times) does not stop the others; the run
    then raises :class:`FleetError` naming it, after every other device finished, and its
    partial table stays for ``resume``.
    """
    from .bundle_run import check_batch, read_manifest

    ray = _ray()
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle)
    settings = settings or Settings()
    protocol = protocol or Protocol()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ProfilerError(f"--out {out_dir} is a file; a fleet run writes one table per "
                            "device into a folder")
    if retries < 0:
        raise ProfilerError("retries must be >= 0")
    check_batch(bundle, manifest, settings.batch)
    check_address(address)
    own = _connect(ray, address)
    fleet = None
    try:
        devs = [Device(name, nid, out_dir / f"{name}.json")
                for name, nid in _chosen_nodes(ray, address, resource, devices)]
        if not resume:
            clash = [str(d.out) for d in devs if d.out.exists()]
            if clash:
                raise ProfilerError(f"{clash[0]} exists; pass --resume to continue the fleet "
                                    "run, or choose another --out")
        out_dir.mkdir(parents=True, exist_ok=True)
        fleet = _Fleet(ray, bundle, manifest, backend, asdict(settings), asdict(protocol),
                       resource, devs, _Limits(resume, retries, lost_after_s, heartbeat_s),
                       progress)
        return fleet.run()
    finally:
        for a in fleet.actors if fleet else []:
            _kill(ray, a)
        if own:
            ray.shutdown()


def _connect(ray: Any, address: str) -> bool:
    """Join the cluster at ``address`` unless this process already has; True when it
    joined here (and so shuts the connection down at the end)."""
    if ray.is_initialized():
        return False
    import logging

    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                 configure_logging=True)
    except (ConnectionError, RuntimeError) as exc:
        raise ProfilerError(f"cannot connect to the Ray cluster at {address}: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    return True


def _chosen_nodes(ray: Any, address: str, resource: str, devices: "list[str] | None"
                  ) -> list[tuple[str, str]]:
    """(device name, node id) of the live device nodes, only ``devices`` when given."""
    found = device_nodes(ray.nodes(), resource)
    if devices:
        unknown = sorted(set(devices) - {n for n, _ in found})
        if unknown:
            raise ProfilerError(f"no live node carries {resource!r} for device(s) "
                                f"{', '.join(unknown)}")
        found = [(n, i) for n, i in found if n in devices]
    if not found:
        have = sorted({r for n in ray.nodes() if n.get("Alive")
                       for r in (n.get("Resources") or {})
                       if not r.startswith("node:") and r not in
                       ("CPU", "GPU", "memory", "object_store_memory")})
        raise ProfilerError(f"no live node of the cluster at {address} carries the resource "
                            f"{resource!r} (custom resources there: {', '.join(have) or 'none'}); "
                            f"start each device's node with: ray start --address ADDR "
                            f"--resources '{{\"{resource}\": 1}}' --labels {LABEL}=NAME")
    return found


@dataclass(frozen=True)
class _Limits:
    resume: bool
    retries: int
    lost_after_s: float
    heartbeat_s: float


class _Fleet:
    """One fleet run: a worker per device, restarted when lost, until every device is
    done or has failed."""

    def __init__(self, ray: Any, bundle: Path, manifest: Mapping[str, Any], backend: str,
                 settings: dict[str, Any], protocol: dict[str, Any], resource: str,
                 devs: list[Device], limits: _Limits, progress: Progress | None) -> None:
        from .bundle_run import wanted_keys

        self.ray, self.manifest, self.resource, self.devs = ray, manifest, resource, devs
        self.limits, self.progress = limits, progress
        self.backend, self.settings, self.protocol = backend, settings, protocol
        self.bundle_id, files = bundle_files(bundle, manifest)
        self.files_ref = ray.put(files)
        self.worker = ray.remote(DeviceWorker)
        self.wanted = wanted_keys(manifest)
        self.actors: list = []

    def run(self) -> dict[str, Any]:
        for d in self.devs:
            d.started = time.monotonic()
            self.try_start(d)
        self.tick("measuring")
        while any(d.state == "measuring" for d in self.devs):
            self.poll()
        self.finish()
        self.tick("done")
        return self.report()

    def tick(self, label: str) -> None:
        from .bundle_run import finished_keys

        if self.progress:
            done = sum(len(finished_keys(d.table) & self.wanted) for d in self.devs if d.table)
            self.progress(label, done, len(self.wanted) * len(self.devs))

    def start(self, d: Device) -> None:
        """A fresh actor on the device's node; resumes from the table on the host."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from .bundle_run import finished_keys, open_table

        d.attempts += 1
        d.actor = self.worker.options(
            num_cpus=0, resources={self.resource: 1}, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(d.node_id, soft=False),
        ).remote(self.backend, self.settings, self.protocol)
        self.actors.append(d.actor)
        info = self.ray.get(d.actor.info.remote({"space": self.manifest.get("space", ""),
                                                 "space_id": self.manifest.get("space_id", "")}))
        d.pids.append(info["pid"])
        meta = {**info["meta"], "fleet": {"device": d.name, "resource": self.resource,
                                          "ray_node_id": d.node_id,
                                          "worker_host": info["host"],
                                          "worker_pid": info["pid"],
                                          "worker_imported_torch": info["torch_loaded"]}}
        d.base, d.table = open_table(d.out, meta, self.limits.resume or d.attempts > 1)
        if not self.wanted - finished_keys(d.table):
            d.gen, d.state = None, "finishing"
            return
        self.ray.get(d.actor.stage.remote(self.bundle_id, self.files_ref))
        d.gen = d.actor.measure.remote(sorted(finished_keys(d.table)), self.limits.heartbeat_s)
        d.state, d.last_seen, d.attempt_s = "measuring", time.monotonic(), 0.0

    def give_up(self, d: Device, why: str) -> None:
        d.state, d.reason, d.gen, d.ended = "failed", why, None, time.monotonic()
        _kill(self.ray, d.actor)

    def lost(self, d: Device, why: str) -> None:
        """The worker died or went silent: a fresh one resumes, up to ``retries``."""
        _kill(self.ray, d.actor)
        d.worker_s += d.attempt_s
        if d.attempts > self.limits.retries:
            self.give_up(d, f"worker lost {d.attempts} times ({why})")
            return
        alive = {nid for _, nid in device_nodes(self.ray.nodes(), self.resource)}
        if d.node_id not in alive:
            self.give_up(d, f"its node left the cluster ({why})")
            return
        self.tick(f"{d.name}: worker lost ({why}); retrying")
        self.try_start(d)

    def failed(self, d: Device, exc: BaseException, typed: bool) -> None:
        """``exc`` from a worker: a lost worker is retried, anything else ends the device
        (``typed``: a cause other than the profilers' own errors names its type)."""
        if _is_lost(exc):
            self.lost(d, type(exc).__name__)
            return
        c = _cause(exc)
        self.give_up(d, " ".join(str(c).split())[:300]
                     if isinstance(c, ProfilerError) or not typed
                     else f"{type(c).__name__}: {' '.join(str(c).split())[:200]}")

    def try_start(self, d: Device) -> None:
        try:
            self.start(d)
        except Exception as exc:  # noqa: BLE001 - sorted into lost / bad input
            self.failed(d, exc, typed=True)

    def poll(self) -> None:
        """Wait for the next update of any measuring device, and take it in."""
        from .bundle_run import apply_update

        active = [d for d in self.devs if d.state == "measuring"]
        ready, _ = self.ray.wait([d.gen for d in active], num_returns=1,
                                 timeout=self.limits.heartbeat_s)
        now = time.monotonic()
        for d in active:
            if d.gen not in ready:
                if now - d.last_seen > self.limits.lost_after_s:
                    self.lost(d, f"silent for {self.limits.lost_after_s:.0f} s")
                continue
            try:
                upd = self.ray.get(next(d.gen))
            except StopIteration:
                d.state, d.gen, d.ended = "finishing", None, time.monotonic()
                continue
            except Exception as exc:  # noqa: BLE001 - sorted into lost / bad input
                self.failed(d, exc, typed=False)
                continue
            d.last_seen = now
            d.attempt_s = float(upd.get("worker_s", d.attempt_s))
            if not upd.get("heartbeat"):
                d.table = apply_update(d.out, d.base, d.table, upd)
                self.tick(f"{d.name}: measuring")

    def finish(self) -> None:
        from .bundle_run import finalize

        for d in self.devs:
            if d.state == "finishing":
                d.worker_s += d.attempt_s
                d.table = finalize(d.out, d.base, self.manifest)
                d.state, d.ended = "done", d.ended or time.monotonic()
                _kill(self.ray, d.actor)

    def report(self) -> dict[str, Any]:
        """The run's report; :class:`FleetError` (carrying it) when a device failed."""
        from .bundle_run import finished_keys

        devs, wanted = self.devs, self.wanted
        report = {"tables": {d.name: str(d.out) for d in devs if d.state == "done"},
                  "devices": {d.name: {"state": d.state, "table": str(d.out),
                                       "attempts": d.attempts, "reason": d.reason,
                                       "node_id": d.node_id, "worker_pids": d.pids,
                                       "wall_s": round((d.ended or time.monotonic())
                                                       - d.started, 3),
                                       "worker_measure_s": round(d.worker_s, 3),
                                       "status": d.table.get("meta", {}).get("status")
                                       if d.table else None}
                              for d in devs}}
        bad = [d for d in devs if d.state == "failed"]
        if bad:
            kept = ", ".join(f"{d.name}: {len(finished_keys(d.table) & wanted) if d.table else 0}"
                             f"/{len(wanted)} items kept" for d in bad)
            err = FleetError(f"{len(bad)} of {len(devs)} devices did not finish: "
                             + "; ".join(f"{d.name}: {d.reason}" for d in bad)
                             + f" ({kept}; rerun with --resume)")
            err.report = report  # type: ignore[attr-defined]
            raise err
        return report


def _kill(ray, actor) -> None:
    if actor is None:
        return
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already dead is fine
        pass
