"""The flags deployment engineers know from benchmark_app, trtexec and onnxruntime_perf_test:
a fixed count or duration, the input shape and batch, a GPU's number, p99 beside the
median, ``--json`` on the device-side commands. Real ONNX Runtime runs on tiny graphs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwnas.cli import main as hwnas_main
from hwnas_profilers import ProfilerError, Protocol, Settings, get_profiler
from hwnas_profilers.onnxgraph import write_reference_model


def _profilers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas_profilers", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _one_line_exit2(r) -> None:
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_reference_model(tmp_path_factory.mktemp("m") / "ref.onnx", channels=4, size=8)


def test_device_index_is_parsed_and_refused_where_it_means_nothing():
    s = Settings(device="cuda:1")
    assert (s.device_kind, s.device_index) == ("cuda", 1)
    assert (Settings(device="cuda").device_index, Settings(device="CPU").device_kind) == (0, "cpu")
    for bad in ("cpu:1", "cuda:x", "cuda:-1", "cuda:"):
        with pytest.raises(ProfilerError, match="device index"):
            Settings(device=bad)


def test_one_parser_for_gpu_numbers():
    """hwnas's cuda:N, OpenVINO's GPU.N; the fingerprint picks its GPU by the same number."""
    from hwnas_profilers.base import device_number
    from hwnas_profilers.fingerprint import _gpu

    assert [device_number(t) for t in ("cuda:1", "GPU.2", "cuda", "cpu", "GPU.x")] == \
        [1, 2, 0, 0, 0]
    from types import SimpleNamespace

    from hwnas_profilers.backends.openvino import OpenVinoProfiler

    # OpenVINO's own name of a device, from either form (not GPU.1.1)
    assert [OpenVinoProfiler.device_name(SimpleNamespace(settings=Settings(device=d)))
            for d in ("GPU.1", "gpu:1", "cpu", "GPU")] == ["GPU.1", "GPU.1", "CPU", "GPU"]
    gpus = [{"name": "a"}, {"name": "b"}]
    assert [_gpu(gpus, t)["name"] for t in ("cuda:1", "GPU.1", "cuda", "cuda:7")] == \
        ["b", "b", "a", "a"]


def test_onnxruntime_refuses_a_gpu_number_cuda_does_not_have(monkeypatch):
    """Before any session: onnxruntime itself fails only at the first session, in CUDA's
    words. The provider list is the runtime's own, widened to reach the check on a host
    without onnxruntime-gpu; nothing is loaded or measured."""
    ort = pytest.importorskip("onnxruntime")
    from hwnas_profilers.base import Unsupported, cuda_device_count

    avail = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", *avail])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert cuda_device_count() == 2
    with pytest.raises(Unsupported, match=r"cuda:2 \(this machine has 2 CUDA device"):
        get_profiler("onnxruntime", Settings(device="cuda:2"))
    assert get_profiler("onnxruntime", Settings(device="cuda:1")).settings.device_index == 1


def test_fixed_protocol_validation():
    with pytest.raises(ValueError):
        Protocol.fixed()
    with pytest.raises(ValueError):
        Protocol.fixed(iterations=5, duration_s=1.0)
    p = Protocol.fixed(iterations=7)
    assert (p.min_samples, p.max_samples, p.per_round) == (7, 7, 1)


def test_measure_fixed_iterations_json_has_p99(model):
    pytest.importorskip("onnxruntime")
    r = _profilers("measure", model, "--backend", "onnxruntime", "--iterations", "40", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["n"] == 40  # exactly the count asked for, in the fastest session
    assert d["median_ms"] <= d["p90_ms"] <= d["p99_ms"]
    assert d["meta"]["protocol"]["max_samples"] == 40


def test_measure_fixed_duration_samples_that_long(model):
    pytest.importorskip("onnxruntime")
    r = _profilers("measure", model, "--backend", "onnxruntime", "--duration", "0.5", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["span_s"] >= 0.5 and d["n"] > 10


def test_measure_shape_of_a_dynamic_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 8, 8])
    g = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "dyn", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "dyn.onnx"
    onnx.save(m, str(path))
    r = _profilers("measure", path, "--backend", "onnxruntime", "--iterations", "10")
    _one_line_exit2(r)
    assert "dynamic" in r.stderr
    r = _profilers("measure", path, "--backend", "onnxruntime", "--iterations", "10",
                   "--shape", "4,3,8,8", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["batch"] == 4 and d["throughput_ips"] == pytest.approx(4000 / d["figure_ms"], rel=1e-3)
    # hwnas measure: --batch replaces N of the shape, and needs a shape to replace it in
    assert hwnas_main(["measure", str(path), "--backend", "onnxruntime", "--batch", "2"]) == 2
    assert hwnas_main(["measure", str(path), "--backend", "onnxruntime", "--shape", "1,3,8,8",
                       "--batch", "2", "--iterations", "10", "--json"]) == 0


@pytest.mark.parametrize("args", [
    ("--iterations", "10", "--duration", "1"),   # one or the other
    ("--iterations", "10", "--quick"),           # --quick is itself a protocol
    ("--iterations", "-3"),
    ("--duration", "nan"),
    ("--shape", "1,3,x,8"),
    ("--shape", "1,3,8"),
    ("--device", "cpu:2"),
])
def test_measure_flags_bad_input(model, args):
    _one_line_exit2(_profilers("measure", model, "--backend", "onnxruntime", *args))


def test_gpu_number_without_that_gpu_is_one_line(model):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    r = _profilers("measure", model, "--backend", "onnxruntime", "--device", "cuda:1")
    _one_line_exit2(r)
    assert "cuda" in r.stderr


def test_device_side_profile_json(tmp_path, model):
    pytest.importorskip("onnxruntime")
    bundle = tmp_path / "bundle"
    (bundle / "blocks").mkdir(parents=True)
    import shutil

    shutil.copy(model, bundle / "blocks" / "b0.onnx")
    (bundle / "manifest.json").write_text(json.dumps(
        {"schema": 1, "kind": "hwnas.block_bundle", "space": "one-block", "space_id": "x1",
         "blocks": [{"key": "b0", "file": "blocks/b0.onnx", "input_shape": [1, 4, 8, 8],
                     "role": "candidate"}], "networks": []}))
    out = tmp_path / "t.json"
    r = _profilers("profile", bundle, "--backend", "onnxruntime", "--quick", "--out", out,
                   "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] == "complete" and d["blocks"] == 1 and d["failed"] == []
    entry = json.loads(out.read_text())["entries"]["b0"]
    assert entry["p99_ms"] >= entry["p90_ms"] >= entry["median_ms"] > 0


def test_one_progress_shape(tmp_path):
    """Every library job reports progress(stage, done, total)."""
    pytest.importorskip("torch")
    from hwnas import load_space
    from hwnas.bundle import export_bundle

    calls = []
    export_bundle(load_space("tiny-32"), tmp_path, 1, progress=lambda *a: calls.append(a))
    assert calls and all(isinstance(s, str) and isinstance(d, int) and isinstance(t, int)
                         for s, d, t in calls)
    assert calls[-1][1] == calls[-1][2]


def test_fixed_count_is_exact_in_long_runs(model):
    """A long count takes its calls in runs (not one round per call) and stops exactly."""
    pytest.importorskip("onnxruntime")
    p = Protocol.fixed(iterations=1003)
    assert p.per_round == 50 and p.is_fixed and not Protocol().is_fixed
    r = _profilers("measure", model, "--backend", "onnxruntime", "--iterations", "1003", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 1003


def test_device_side_batch_needs_a_shape(model):
    _one_line_exit2(_profilers("measure", model, "--backend", "onnxruntime", "--batch", "4"))


def test_gpu_fingerprint_follows_the_device_number():
    from hwnas_profilers.fingerprint import differences

    cpu = {"cpu": "x", "logical_cores": 2}
    gpus = [{"name": "A100", "driver": "1"}, {"name": "H100", "driver": "1"}]
    table = {**cpu, "target": "cuda:1", "gpus": gpus}
    assert differences(table, {**cpu, "gpus": gpus}) == []
    assert differences(table, {**cpu, "gpus": [gpus[0], {"name": "L4", "driver": "1"}]}) == \
        ["gpu name 'H100' -> 'L4'"]
    assert differences({**table, "target": "cuda"}, {**cpu, "gpus": gpus[::-1]}) == \
        ["gpu name 'A100' -> 'H100'"]
