"""profilers without a runtime: registry, protocol, calibration, table files, resume, locks.

A fake backend with deterministic timings stands in for a runtime, so these tests check
the bookkeeping exactly and fast; the real runtimes are in test_profilers_runtime.py.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import hwnas_profilers
from hwnas_profilers import Profiler, ProfilerError, Protocol, Runner, Settings, profile_bundle
from hwnas_profilers.calibration import fit_calibration
from hwnas_profilers.protocol import Stats, measure_interleaved, summarize
from hwnas_profilers.registry import backend_class, load_registry
from hwnas_profilers.tablefile import merge_write, read_table

SPACE_KEYS = None


def _keys() -> list[str]:
    from hwnas.spaces import load_space

    return [b.key() for b in load_space("tiny-32").unique_blocks()]


class _FixedRunner(Runner):
    def __init__(self, ms: float, log: list, key: str, fail: bool = False,
                 drift: bool = False) -> None:
        self.ms, self.log, self.key, self.fail, self.i, self.drift = ms, log, key, fail, 0, drift

    def time_ms(self) -> float:
        self.log.append(self.key)
        if self.fail:
            raise RuntimeError("kernel not implemented")
        self.i += 1
        if self.drift:  # never stable: finishes only at max_samples
            return self.ms * 2.0 ** self.i
        return self.ms * (1.0 + 0.01 * ((self.i * 7) % 5 - 2))  # deterministic jitter


@dataclass
class FakeProfiler(Profiler):
    name = "fake"
    extra = "fake"
    interrupt_after: int = 0  # raise KeyboardInterrupt after this many timed calls (0: never)
    drifting: tuple = ()      # stems of blocks whose timings never settle

    def check(self) -> None:
        self.loaded: list[str] = []
        self.calls: list[str] = []

    def runtime(self) -> dict[str, str]:
        return {"runtime": "fake", "version": "1.0"}

    def devices(self) -> list[str]:
        return ["cpu"]

    def load(self, onnx_path, input_shape) -> Runner:
        path = Path(onnx_path)
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        if b"unloadable" in path.read_bytes():
            raise RuntimeError("cannot parse this graph")
        self.loaded.append(path.stem)
        ms = 0.01 if path.stem == "identity" else 0.1 + 0.01 * (len(self.loaded) % 7)
        runner = _FixedRunner(ms, self.calls, path.stem, fail=b"crash" in path.read_bytes(),
                             drift=path.stem in self.drifting)
        if self.interrupt_after:
            base = runner.time_ms

            def limited() -> float:
                if len(self.calls) >= self.interrupt_after:
                    raise KeyboardInterrupt
                return base()

            runner.time_ms = limited  # type: ignore[method-assign]
        return runner


def make_bundle(root: Path, n_blocks: int = 8, nets: int = 3) -> Path:
    keys = _keys()[:n_blocks]
    (root / "blocks").mkdir(parents=True)
    (root / "networks").mkdir()
    blocks = []
    for k in keys:
        (root / "blocks" / f"{k}.onnx").write_bytes(b"fake onnx")
        blocks.append({"key": k, "file": f"blocks/{k}.onnx", "input_shape": [1, 3, 8, 8]})
    networks = []
    for j in range(nets):
        (root / "networks" / f"net{j}.onnx").write_bytes(b"fake net")
        networks.append({"name": f"net{j}", "file": f"networks/net{j}.onnx",
                         "blocks": keys[j:j + 4], "input_shape": [1, 3, 8, 8]})
    (root / "manifest.json").write_text(json.dumps({
        "schema": 1, "kind": "hwnas.block_bundle", "space": "tiny-32", "space_id": "abc",
        "blocks": blocks, "networks": networks}))
    return root


QUICK = Protocol(warmup=1, per_round=2, min_samples=4, max_samples=6, stable_rounds=1,
                 stable_rel=0.5, se_rel=1.0, min_span_s=0.0)


# ------------------------------------------------------------------- registry
def test_registry_lists_builtin_backends_from_entry_points():
    reg = load_registry()
    assert {"onnxruntime", "openvino", "torch", "tensorrt"} <= set(reg)
    assert all(ep.group == "hwnas.profilers" for ep in reg.values())
    for name in ("onnxruntime", "openvino", "torch", "tensorrt"):
        assert issubclass(backend_class(name), Profiler)
        assert backend_class(name).name == name


def test_registry_rejects_duplicate_names():
    eps = [metadata.EntryPoint("x", "a.b:C", "hwnas.profilers"),
           metadata.EntryPoint("x", "d.e:F", "hwnas.profilers")]
    with pytest.raises(ProfilerError, match="two profiler backends"):
        load_registry(eps)


def test_third_party_backend_loads_through_the_same_path():
    eps = [metadata.EntryPoint("fake", f"{__name__}:FakeProfiler", "hwnas.profilers")]
    assert backend_class("fake", load_registry(eps)) is FakeProfiler


def test_unknown_backend_and_missing_runtime_messages(monkeypatch):
    with pytest.raises(ProfilerError, match="unknown profiler backend 'nope'"):
        hwnas_profilers.get_profiler("nope")
    import builtins

    real = builtins.__import__

    def no_tensorrt(name, *a, **kw):
        if name == "tensorrt":
            raise ImportError("No module named 'tensorrt'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_tensorrt)
    with pytest.raises(hwnas_profilers.MissingRuntime, match=r"pip install 'hwnas\[tensorrt\]'"):
        hwnas_profilers.get_profiler("tensorrt", Settings(device="cuda"))


def test_settings_validation():
    with pytest.raises(ProfilerError, match="precision"):
        Settings(precision="fp8")
    with pytest.raises(ProfilerError, match="threads"):
        Settings(threads=-1)
    assert Settings(threads=0).n_threads >= 1


def test_profilers_never_imports_torch_or_hwnas():
    import subprocess
    import sys

    code = ("import sys, hwnas_profilers, hwnas_profilers.bundle_run, hwnas_profilers.session, "
            "hwnas_profilers.backends.onnxruntime, hwnas_profilers.backends.openvino, hwnas_profilers.backends.tensorrt, hwnas_profilers.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'hwnas')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_old_module_name_still_imports_the_bundle_runner():
    import hwnas_profilers.bundle_run as bundle_run
    from hwnas_profilers.session import measure_model, profile_bundle, read_manifest

    assert (measure_model, profile_bundle, read_manifest) == (
        bundle_run.measure_model, bundle_run.profile_bundle, bundle_run.read_manifest)
    with pytest.raises(ImportError):
        from hwnas_profilers.session import no_such_name  # noqa: F401


def test_identity_graph_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    from hwnas_profilers.onnxgraph import identity_model

    model = onnx.load_from_string(identity_model((1, 2, 3, 4)))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Identity"]


# ------------------------------------------------------------------- protocol
def test_summarize_is_median_and_iqr():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.median_ms == 3.0 and s.n == 5 and s.min_ms == 1.0
    assert s.spread_ms == pytest.approx(2.0)


def test_interleaved_rounds_visit_every_item_and_record_failures():
    log: list[str] = []
    runners = {"a": _FixedRunner(1.0, log, "a"), "b": _FixedRunner(2.0, log, "b"),
               "bad": _FixedRunner(1.0, log, "bad", fail=True)}
    res = measure_interleaved(runners, QUICK)
    assert isinstance(res["a"], Stats) and isinstance(res["b"], Stats)
    assert res["a"].median_ms == pytest.approx(1.0, rel=0.03)
    assert isinstance(res["bad"], str) and "kernel not implemented" in res["bad"]
    # interleaved: b's calls are not all after a's
    first_b, last_a = log.index("b"), len(log) - 1 - log[::-1].index("a")
    assert first_b < last_a


# ---------------------------------------------------------------- calibration
def test_calibration_recovers_scale_and_offset_and_reports_error():
    x = np.linspace(5, 15, 12)
    y = 0.9 * x + 1.0
    y[3] *= 1.4  # one disturbed network must not drag the fit
    cal = fit_calibration(x, y)
    assert cal["method"] == "huber"
    assert cal["scale"] == pytest.approx(0.9, rel=0.02)
    assert cal["offset_ms"] == pytest.approx(1.0, abs=0.2)
    assert cal["within_10pct"] == pytest.approx(11 / 12)
    assert cal["fitted_on"] == 12 and "loo_median_abs_err_pct" in cal


def test_calibration_without_networks_is_identity():
    cal = fit_calibration([], [])
    assert cal["scale"] == 1.0 and cal["fitted_on"] == 0


# ---------------------------------------------------------------- table files
def test_profiled_table_round_trips_through_hwnas(tmp_path):
    from hwnas.tables.device import DeviceTable, load_device_table

    bundle = make_bundle(tmp_path / "b")
    out = tmp_path / "t.json"
    t = profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=FakeProfiler())
    assert t["meta"]["status"] == "complete"
    assert set(t["meta"]["protocol"]) >= {"warmup", "min_samples", "figure", "spread", "timer"}
    assert t["meta"]["device"]["logical_cores"] >= 1 and t["meta"]["date"]
    table = load_device_table(out)
    assert table.calibration.fitted_on == 3
    assert table.overhead_ms == pytest.approx(0.01, rel=0.05)
    again = DeviceTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert again.to_dict() == table.to_dict()
    assert json.loads(out.read_text())["entries"] == table.to_dict()["entries"]


def test_failed_block_is_recorded_with_reason_never_zero(tmp_path):
    from hwnas.errors import TableError
    from hwnas.tables.device import load_device_table

    bundle = make_bundle(tmp_path / "b")
    keys = _keys()[:8]
    (bundle / "blocks" / f"{keys[1]}.onnx").write_bytes(b"unloadable")
    (bundle / "blocks" / f"{keys[2]}.onnx").write_bytes(b"crash at run time")
    out = tmp_path / "t.json"
    t = profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=FakeProfiler())
    assert t["entries"][keys[1]] == {"status": "failed",
                                     "reason": "RuntimeError: cannot parse this graph"}
    assert t["entries"][keys[2]]["status"] == "failed"
    assert "kernel not implemented" in t["entries"][keys[2]]["reason"]
    assert "median_ms" not in t["entries"][keys[2]]
    table = load_device_table(out)
    with pytest.raises(TableError, match="failed"):
        table.net_ms(keys[2])


def test_resume_after_interruption_remeasures_nothing_finished(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    out = tmp_path / "t.json"
    # calls counted include the reference graph's two per item turn
    first = FakeProfiler(interrupt_after=200, drifting=tuple(_keys()[5:8]))
    with pytest.raises(KeyboardInterrupt):
        profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=first)
    partial = read_table(out)
    assert partial["meta"]["status"] == "partial"
    done = set(partial["entries"])
    assert 0 < len(done) < 8
    with pytest.raises(ProfilerError, match="--resume"):
        profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=FakeProfiler())
    second = FakeProfiler()
    t = profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=second, resume=True)
    assert t["meta"]["status"] == "complete" and len(t["entries"]) == 8
    assert not done & set(second.loaded)
    def measured(e):  # ref_ms is derived: ratio x the table's final reference floor
        return {f: v for f, v in e.items() if f != "ref_ms"}

    assert {k: measured(t["entries"][k]) for k in done} == \
        {k: measured(partial["entries"][k]) for k in done}
    ref = t["meta"]["reference"]["floor_ms"]
    assert all(e["ref_ms"] == pytest.approx(e["ref_ratio"] * ref, rel=1e-5)
               for e in t["entries"].values())


def test_resume_refuses_a_table_measured_differently(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    out = tmp_path / "t.json"
    profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=FakeProfiler())
    with pytest.raises(ProfilerError, match="threads"):
        profile_bundle(bundle, "fake", out, protocol=QUICK, resume=True,
                       profiler=FakeProfiler(Settings(threads=3)))


def _writer(path: str, prefix: str, n: int) -> None:
    base = {"schema": 1, "kind": "hwnas.device_table", "meta": {"backend": "fake"},
            "entries": {}}
    for i in range(n):
        merge_write(path, base, {f"{prefix}{i}": {"median_ms": float(i), "n": 1, "status": "ok"}})


def test_concurrent_writers_never_lose_or_corrupt(tmp_path):
    out = str(tmp_path / "t.json")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(out, p, 40)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    entries = read_table(out)["entries"]
    assert len(entries) == 120
    assert not list(tmp_path.glob(".t.json.*.tmp"))


def _profile_into(bundle: str, out: str) -> None:
    profile_bundle(bundle, "fake", out, protocol=QUICK, profiler=FakeProfiler(), resume=True)


def test_two_processes_profiling_one_table(tmp_path):
    bundle = make_bundle(tmp_path / "b", n_blocks=12)
    out = str(tmp_path / "t.json")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_profile_into, args=(str(bundle), out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    t = read_table(out)
    assert len(t["entries"]) == 12 and t["meta"]["status"] == "complete"
    assert all(e["status"] == "ok" for e in t["entries"].values())
