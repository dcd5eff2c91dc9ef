"""A statistic that survives a noisy host, the portability guard, recalibration,
execution modes and batch sizes."""

import json
from pathlib import Path
import math

import pytest

from conftest import LUTS, has
from hwnas.arch import sample_architecture
from hwnas.errors import TableError
from hwnas.spaces import load_space
from hwnas.tables.device import LatencyStat, load_device_table
from hwnas_profilers import Protocol, Settings, get_profiler
from hwnas_profilers.base import Runner, Unsupported
from hwnas_profilers.fingerprint import differences, fingerprint
from hwnas_profilers.protocol import Stats, measure_interleaved, summarize


class _PhaseRunner(Runner):
    """Deterministic two-phase timings: ``fast`` ms in the fast phase, 1.6x in the slow one;
    ``fast_share`` of the calls land in the fast phase (a shared host's neighbour)."""

    def __init__(self, fast: float, fast_share: float) -> None:
        self.fast, self.share, self.i = fast, fast_share, 0

    def time_ms(self) -> float:
        self.i += 1
        in_fast = (self.i * 0.6180339887) % 1.0 < self.share
        jitter = 1.0 + 0.004 * ((self.i * 7) % 5 - 2)
        return self.fast * jitter * (1.0 if in_fast else 1.6)


def test_summarize_keeps_floor_percentiles_and_span():
    s = summarize([5.0, 1.0, 2.0, 3.0, 4.0, 100.0], span_s=2.5)
    assert s.floor_ms == pytest.approx(2.0)  # mean of the three fastest
    assert s.min_ms == 1.0 and s.median_ms == 3.5 and s.span_s == 2.5
    assert s.p10_ms < s.median_ms < s.p90_ms
    e = s.entry()
    assert {"floor_ms", "p10_ms", "p90_ms", "span_s", "median_ms", "min_ms"} <= set(e)
    assert s.figure("floor") == s.floor_ms and s.figure("median") == s.median_ms


def test_protocol_refuses_an_unknown_figure():
    with pytest.raises(ValueError, match="unknown figure"):
        Protocol(figure="mean")
    assert Protocol().figure == "floor"
    assert Protocol().to_dict()["figure"] == "floor"


def test_floor_holds_where_the_median_follows_the_phase_mix():
    """The decision in hwnas/device_tables/README.md, in miniature: the same block in a mostly
    slow and in a mostly fast phase mix."""
    p = Protocol(warmup=0, per_round=3, min_samples=30, max_samples=300, stable_rounds=3,
                 min_span_s=0.0)
    slow_mix = measure_interleaved({"a": _PhaseRunner(1.0, 0.15)}, p)["a"]
    fast_mix = measure_interleaved({"a": _PhaseRunner(1.0, 0.8)}, p)["a"]
    assert abs(slow_mix.median_ms / fast_mix.median_ms - 1) > 0.4  # the median moves
    assert abs(slow_mix.floor_ms / fast_mix.floor_ms - 1) < 0.01   # the floor does not


def test_span_rule_samples_at_least_min_span():
    p = Protocol(warmup=0, per_round=2, min_samples=4, max_samples=8, stable_rounds=1,
                 stable_rel=0.5, min_span_s=0.15)
    res = measure_interleaved({"a": _PhaseRunner(0.01, 1.0)}, p)["a"]
    assert isinstance(res, Stats) and res.span_s >= 0.15 and res.n > 8


class _Spread(Runner):
    """Timings that never form a fast mode: each call slower than the last."""

    def __init__(self) -> None:
        self.i = 0

    def time_ms(self) -> float:
        self.i += 1
        return 1.0 * 1.05 ** min(self.i, 400)


def test_floor_without_a_fast_mode_waits_then_is_marked_not_stable():
    p = Protocol(warmup=0, per_round=2, min_samples=4, max_samples=8, stable_rounds=1,
                 stable_rel=0.5, min_span_s=0.0, max_span_s=0.12)
    res = measure_interleaved({"a": _Spread()}, p)["a"]
    assert isinstance(res, Stats) and not res.stable and res.span_s >= 0.12


class _Phased(Runner):
    """Shares a phase clock with its partner: ``fast`` ms in the fast phase, ``fast *
    slowdown`` in the slow one; the clock stays slow while ``slow_only`` is set."""

    def __init__(self, clock: dict, fast: float, slowdown: float) -> None:
        self.clock, self.fast, self.slowdown = clock, fast, slowdown

    def time_ms(self) -> float:
        self.clock["t"] += 1
        slow = self.clock["slow_only"] or (self.clock["t"] // 7) % 2 == 0
        return self.fast * (self.slowdown if slow else 1.0)


def test_floor_is_phase_corrected_by_the_reference():
    """The option measured and left off by default (hwnas/device_tables/README.md), still exact
    in its own terms."""
    p = Protocol(warmup=0, per_round=3, min_samples=12, max_samples=60, stable_rounds=2,
                 min_span_s=0.0, max_span_s=0.0, phase_correct=True)
    clock = {"t": 0, "slow_only": False}
    ref = _Phased(clock, 0.2, 1.43)
    both = measure_interleaved({"a": _Phased(clock, 10.0, 1.54)}, p, reference=ref)["a"]
    assert both.floor_ms == pytest.approx(10.0, rel=1e-6)  # met the fast phase: exact
    # a run that never meets the fast phase, told the reference's floor of earlier runs
    clock["slow_only"] = True
    slow = measure_interleaved({"a": _Phased(clock, 10.0, 1.54)}, p, reference=ref,
                               ref_hint=0.2)["a"]
    assert slow.min_ms == pytest.approx(15.4)  # the raw figure: 54% off
    assert slow.floor_ms == pytest.approx(10.0 * 1.54 / 1.43, rel=1e-6)  # corrected: +7.7%
    assert slow.ref_ratio == pytest.approx(15.4 / (0.2 * 1.43))


def _floor_table(space, with_upper=True):
    entries = {}
    for b in space.unique_blocks():
        f = 0.1 + b.macs() / 1e7
        entries[b.key()] = LatencyStat.from_dict(b.key(), {
            "median_ms": 1.5 * f, "spread_ms": 0.01, "n": 30, "status": "ok",
            "floor_ms": f, "p90_ms": 1.7 * f})
    cal = {"scale": 1.1, "offset_ms": 0.0, "fitted_on": 3}
    if with_upper:
        cal["upper"] = {"figure": "p90", "scale": 1.0, "offset_ms": 0.0, "overhead_ms": 0.02}
    d = {"schema": 1, "kind": "hwnas.device_table", "space": space.name, "space_id": space.id,
         "meta": {"backend": "onnxruntime", "precision": "fp32", "threads": 1,
                  "protocol": {"name": "interleaved-rounds-v2", "figure": "floor"},
                  "device": {**fingerprint(include_gpu=False), "target": "cpu"},
                  "status": "complete"},
         "overhead_ms": 0.01, "calibration": cal,
         "entries": {k: v.to_dict() for k, v in entries.items()}}
    return d


def test_table_predicts_its_own_figure_and_an_upper_figure(tmp_path):
    sp = load_space("tiny-32")
    (tmp_path / "t.json").write_text(json.dumps(_floor_table(sp)))
    t = load_device_table(tmp_path / "t.json")
    assert t.figure == "floor"
    a = sample_architecture(sp, 3)
    p = t.predict(sp, a)
    keys = [b.key() for b in a.blocks(sp)]
    want = 1.1 * (0.01 + sum(max(t.entries[k].value("floor_ms") - 0.01, 0) for k in keys))
    assert math.isclose(p.latency_ms, want, rel_tol=1e-12)
    up = 0.02 + sum(max(t.entries[k].value("p90_ms") - 0.02, 0) for k in keys)
    assert math.isclose(p.upper_ms, up, rel_tol=1e-12) and p.upper_ms > p.latency_ms
    const, costs = t.layer_costs(sp)  # the solver sees the same figure
    idx = [sp.layers[i].choices.index(c) for i, c in enumerate(a.choices)]
    assert math.isclose(const + sum(c[i] for c, i in zip(costs, idx)), p.latency_ms, rel_tol=1e-9)


def test_floor_table_without_floor_entries_is_refused(tmp_path):
    sp = load_space("tiny-32")
    d = _floor_table(sp)
    k = next(iter(d["entries"]))
    del d["entries"][k]["floor_ms"]
    (tmp_path / "t.json").write_text(json.dumps(d))
    with pytest.raises(TableError, match="floor_ms"):
        load_device_table(tmp_path / "t.json")


def test_median_tables_of_protocol_v1_still_predict_the_median():
    t = load_device_table("tiny-32_torch_cuda_fp32")
    assert t.figure == "median"
    sp = load_space("tiny-32")
    assert t.predict(sp, sample_architecture(sp, 1)).upper_ms is None


def test_fingerprint_differences():
    here = fingerprint(include_gpu=False)
    same = {**here, "target": "cpu"}
    assert differences(same, here) == []
    other = {**same, "cpu": "Other CPU 9000", "physical_cores": 64}
    diff = differences(other, here)
    assert any("Other CPU 9000" in d for d in diff) and any("physical_cores" in d for d in diff)
    gpu = {**same, "target": "cuda", "gpus": [{"name": "NVIDIA H100", "driver": "550"}]}
    assert any("gpu" in d for d in differences(gpu, {**here, "gpus": []}))
    assert differences({"name": "Pixel 1"}, here) == []  # no fingerprint: nothing to compare


def test_predict_and_search_warn_on_another_machine(run_cli, tmp_path):
    sp = load_space("tiny-32")
    d = _floor_table(sp)
    (tmp_path / "here.json").write_text(json.dumps(d))
    d["meta"]["device"]["cpu"] = "Other CPU 9000"
    (tmp_path / "there.json").write_text(json.dumps(d))
    arch = "tiny-32:" + ",".join(sample_architecture(sp, 0).choices)
    rc, out, err = run_cli("predict", arch, "--table", tmp_path / "here.json", "--json")
    assert rc == 0 and "another machine" not in err
    assert json.loads(out)["figure"] == "floor" and json.loads(out)["upper_ms"] > 0
    rc, out, err = run_cli("predict", arch, "--table", tmp_path / "there.json", "--json")
    assert rc == 0 and json.loads(out)["latency_ms"] > 0
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "measured on another machine or runtime" in lines[0]
    assert "Other CPU 9000" in lines[0] and "recalibrate" in lines[0]


def test_mode_and_batch_validation():
    with pytest.raises(Unsupported, match="no mode"):
        get_profiler("onnxruntime", Settings(mode="cuda-graph"))
    if has("torch") and has("onnx"):
        with pytest.raises(Unsupported, match="cuda-graph"):
            get_profiler("torch", Settings(mode="cuda-graph"))  # CPU: no CUDA graphs
        assert get_profiler("torch", Settings()).runtime()["mode"] == "eager"


needs_ort = pytest.mark.skipif(not (has("onnxruntime") and has("torch") and has("onnx")),
                               reason="onnxruntime + torch needed")


@needs_ort
def test_batch_8_bundle_is_measured_at_batch_8(tmp_path, torch_one_thread):
    from hwnas.bundle import export_bundle
    from hwnas_profilers.bundle_run import profile_bundle

    sp = load_space("tiny-32")
    m = export_bundle(sp, tmp_path / "b", calibration_nets=0, batch=8)
    assert all(b["input_shape"][0] == 8 for b in m["blocks"])
    prof = get_profiler("onnxruntime", Settings(batch=8))
    r = prof.load(tmp_path / "b" / m["blocks"][0]["file"], m["blocks"][0]["input_shape"])
    assert r.time_ms() > 0
    r.close()
    with pytest.raises(Exception, match="batch 8, not 1"):  # a batch-1 run refuses it
        profile_bundle(tmp_path / "b", "onnxruntime", tmp_path / "t.json",
                       Settings(batch=1), Protocol.quick())


@needs_ort
def test_batch_the_backend_cannot_run_is_failed_not_zero(tmp_path):
    """A batch-1 file loaded for batch 4 fails at inference: recorded with its reason."""
    from hwnas.nn.export import export_block
    from hwnas_profilers.protocol import measure_interleaved

    b = load_space("tiny-32").layers[0].candidates[0]
    f = export_block(b, tmp_path / "b1.onnx")
    prof = get_profiler("onnxruntime", Settings(batch=4))
    try:
        r = prof.load(f, [4, b.cin, b.h, b.w])
    except Exception as exc:  # noqa: BLE001 - refused at load: also fine, with a reason
        assert str(exc)
        return
    res = measure_interleaved({"x": r}, Protocol.quick())["x"]
    assert isinstance(res, str) and "inference failed" in res


@needs_ort
def test_recalibrate_refits_on_whole_networks_and_keeps_entries(run_cli, tmp_path):
    src = load_device_table("tiny-32_onnxruntime_cpu_fp32")
    out = tmp_path / "recal.json"
    rc, stdout, err = run_cli("tables", "recalibrate", "tiny-32_onnxruntime_cpu_fp32",
                              "--nets", "3", "--quick", "--out", out, "--json")
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["nets"] == 3 and r["fit"]["fitted_on"] == 3 and r["seconds"] > 0
    assert "previous_error_on_these_nets" in r
    t = load_device_table(out)
    assert t.entries == src.entries  # no block re-measured
    assert t.calibration.scale != src.calibration.scale
    assert t.meta["device"]["cpu"] == fingerprint()["cpu"]
    assert t.meta["profiled_on"] == dict(src.meta["device"])
    assert t.portability_warning("x") is None  # it now predicts this machine
    rc, _, err = run_cli("tables", "recalibrate", out, "--nets", "2", "--quick", "--json")
    assert rc == 0, err
    assert len(load_device_table(out).meta["recalibrations"]) == 2  # in place, history kept


def test_recalibrate_bad_input_exit_2(run_cli, tmp_path):
    rc, _, err = run_cli("tables", "recalibrate", "tiny-32_onnxruntime_cpu_fp32", "--nets", "3")
    assert rc == 2 and "shipped table" in err and "--out" in err
    rc, _, err = run_cli("tables", "recalibrate", "tiny-32_onnxruntime_cpu_fp32", "--nets", "1",
                         "--out", tmp_path / "x.json")
    assert rc == 2 and "at least 2" in err
    imported = tmp_path / "imp.json"
    assert run_cli("tables", "import", LUTS / "proxylessnas_pixel1_mobile.yaml",
                   "--format", "proxylessnas", "--out", imported)[0] == 0
    rc, _, err = run_cli("tables", "recalibrate", imported, "--out", tmp_path / "y.json")
    assert rc == 2 and "imported" in err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


@pytest.mark.skipif(has("tensorrt"), reason="tensorrt installed: nothing missing to report")
def test_recalibrate_without_the_runtime_names_the_extra(run_cli, tmp_path):
    d = load_device_table("tiny-32_onnxruntime_cpu_fp32").to_dict()
    d["meta"]["backend"] = "tensorrt"
    d["meta"]["device"]["target"] = "cuda"
    (tmp_path / "trt.json").write_text(json.dumps(d))
    before = (tmp_path / "trt.json").read_bytes()
    rc, _, err = run_cli("tables", "recalibrate", tmp_path / "trt.json", "--nets", "3")
    assert rc == 2 and "hwnas[tensorrt]" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "trt.json").read_bytes() == before  # nothing written


def test_shipped_cpu_tables_predict_the_floor_with_an_upper_line():
    for name in ("tiny-32_onnxruntime_cpu_fp32", "proxyless-mobile_openvino_cpu_fp32"):
        t = load_device_table(name)
        assert t.figure == "floor", name
        assert t.upper_line() is not None, name
    for name in ("tiny-32_torch_cuda_fp16", "proxyless-mobile_torch_cuda_fp32"):
        t = load_device_table(name)  # eager GPU tables say what they predict
        assert t.meta.get("mode") == "eager" and "launch" in t.meta.get("predicts", ""), name


@pytest.mark.skipif(not (has("torch") and has("onnx")), reason="torch + onnx needed")
def test_torch_profiler_gives_the_callers_thread_count_back(tmp_path):
    """The torch profiler measures at the table's thread count and gives the caller's back
    when closed: a library call (measure, profile, a run's check) leaves deployment tooling
    that trains or serves with torch the count it had."""
    import torch

    from hwnas.nn.export import export_block
    from hwnas.pipeline import RunConfig, check_run
    from hwnas_profilers.bundle_run import measure_model

    torch.set_num_threads(2)
    with get_profiler("torch", Settings(threads=1)) as prof:
        assert torch.get_num_threads() == 1
        prof.close()  # twice is harmless
    assert torch.get_num_threads() == 2
    b = load_space("tiny-32").layers[3].candidates[0]
    f = export_block(b, tmp_path / "block.onnx")
    seen = []
    real = Stats.figure
    with pytest.MonkeyPatch.context() as mp:  # the count the measurement ran at
        mp.setattr(Stats, "figure", lambda s, *a: (seen.append(torch.get_num_threads()),
                                                    real(s, *a))[1])
        r = measure_model(f, "torch", Settings(threads=1), Protocol.quick(),
                          input_shape=[1, b.cin, b.h, b.w], sessions=1)
    assert r["figure_ms"] > 0 and set(seen) == {1} and torch.get_num_threads() == 2
    check_run(RunConfig(backend="torch-aoti"))  # builds the engine's profiler to check it
    assert torch.get_num_threads() == 2


@pytest.mark.skipif(not (has("torch") and has("onnx")), reason="torch + onnx needed")
def test_aoti_mode_times_the_block_as_a_torch_aoti_package(tmp_path, monkeypatch,
                                                           torch_one_thread):
    """Mode aoti compiles the block's graph into an AOTInductor package (what a torch-aoti
    engine runs), times the loaded package, computes what the eager graph computes, and
    reuses the cached package instead of compiling again."""
    import numpy as np
    import onnx
    import torch

    if not hasattr(torch._inductor, "aoti_compile_and_package"):
        pytest.skip(f"torch {torch.__version__} has no AOTInductor packaging")
    from hwnas.nn.export import export_block
    from hwnas_profilers.backends import fixed_input
    from hwnas_profilers.backends.torch import compile_graph

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    b = load_space("tiny-32").layers[3].candidates[0]  # an 8x8 residual block: quick to compile
    f = export_block(b, tmp_path / "block.onnx")
    shape = [1, b.cin, b.h, b.w]
    prof = get_profiler("torch", Settings(mode="aoti"))
    assert prof.runtime()["mode"] == "aoti" and "AOTInductor" in prof.runtime()["execution"]
    # compiled for the table's thread count (Inductor splits CPU loops for the compiling
    # process's), whatever the process holds when the block is loaded
    real, seen = torch._inductor.aoti_compile_and_package, []
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package",
                        lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    torch.set_num_threads(2)
    r = prof.load(f, shape)
    assert seen == [1]
    pkgs = list((tmp_path / "cache" / "converted").glob("*.aoti.pt2"))
    assert len(pkgs) == 1 and r.time_ms() > 0
    # the package computes the block: same output as the eager graph
    x = torch.as_tensor(fixed_input(shape))
    eager = compile_graph(onnx.load(str(f)), torch, onnx, "cpu", torch.float32)(x)
    got = torch._inductor.aoti_load_package(str(pkgs[0]))(x)
    assert np.allclose(got.numpy(), eager.numpy(), atol=1e-4)
    r.close()
    # a second load (a resumed profile) reuses the package: no compiler call
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package",
                        lambda *a, **k: pytest.fail("compiled again"))
    r2 = prof.load(f, shape)
    assert r2.time_ms() > 0
    r2.close()


@pytest.mark.slow  # a second AOTInductor compile (about 20 s on 2 cores)
@pytest.mark.skipif(not (has("torch") and has("onnx")), reason="torch + onnx needed")
def test_aoti_mode_compiles_the_identity_graph(tmp_path, monkeypatch, torch_one_thread):
    """The identity graph (the per-call overhead) returns its input, which torch.export
    refuses as an output alias: mode aoti compiles it with a copy and times it."""
    import torch

    if not hasattr(torch._inductor, "aoti_compile_and_package"):
        pytest.skip(f"torch {torch.__version__} has no AOTInductor packaging")
    from hwnas_profilers.bundle_run import write_identity_model

    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    ident = write_identity_model(tmp_path / "identity.onnx")
    r = get_profiler("torch", Settings(mode="aoti")).load(ident, (1, 1, 1, 1))
    assert r.time_ms() > 0
    r.close()


def test_recalibrate_with_frontier_networks_reports_each_group(run_cli, tmp_path):
    """--frontier N adds N networks spread along the table's frontier (here the accuracy
    table's) to the fit, measured with the random ones; each group's error is reported."""
    from hwnas.arch import Architecture
    from hwnas.recalibration import frontier_networks
    from hwnas.solver import frontier
    from hwnas.spaces import load_space
    from hwnas.tables import load_accuracy_table

    csv = Path(__file__).resolve().parents[1] / "examples" / "tiny-32_accuracy.csv"
    sp = load_space("tiny-32")
    src = load_device_table("tiny-32_onnxruntime_cpu_int8")
    acc = load_accuracy_table(csv, sp)
    picks = frontier_networks(src, sp, 3, acc)
    front = [tuple(a.choices) for a in frontier(acc, src).architectures()]
    assert len(picks) == 3 and all(tuple(a.choices) in front for a in picks)
    assert picks[0].choices == front[0] and picks[-1].choices == front[-1]  # both ends
    out = tmp_path / "recal.json"
    rc, stdout, err = run_cli("tables", "recalibrate", "tiny-32_onnxruntime_cpu_int8",
                              "--nets", "3", "--frontier", "3", "--accuracy", csv, "--quick",
                              "--out", out, "--json")
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["nets"] == 6 and r["fit"]["fitted_on"] == 6
    groups = r["fit"]["groups"]
    assert (groups["random"]["nets"], groups["frontier"]["nets"]) == (3, 3)
    assert {"before", "after"} <= set(groups["frontier"])
    assert load_device_table(out).calibration.fitted_on == 6
    assert Architecture.load("tiny-32:" + ",".join(picks[0].choices)).choices == picks[0].choices
