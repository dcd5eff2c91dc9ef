"""Real measurements of small tiny-32 blocks on the installed runtimes.

Each backend test skips with a reason when its runtime (or a GPU) is absent. The bundle
is a one-choice-per-layer shrink of tiny-32 (9 blocks, 2 networks), exported once.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from hwnas_profilers import Protocol, Settings, get_profiler, measure_model, profile_bundle

QUICK = Protocol.quick()


def _has(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from hwnas.bundle import export_bundle
    from hwnas.spaces import load_space

    full = load_space("tiny-32")
    space = full.shrink([[layer.choices[0]] for layer in full.layers], name="tiny-32-one")
    out = tmp_path_factory.mktemp("bundle")
    export_bundle(space, out, calibration_nets=2)
    return out, space


def _cuda() -> bool:
    if not _has("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def _registered() -> list:
    """Every registered profiler backend (entry-point group ``hwnas.profilers``, so a third
    party's backend is tested by the same contract) on the CPU and on a CUDA GPU; a
    combination that cannot run here skips with the backend's own one-line reason."""
    from hwnas_profilers import ProfilerError
    from hwnas_profilers.registry import available_backends, backend_class

    out = []
    for name in available_backends():
        for device in ("cpu", "cuda"):
            fmt = backend_class(name).bundle_format
            if fmt != "onnx":  # this module's bundle is ONNX; theirs is converted on the host
                reason = (f"backend {name!r} reads {fmt} bundles, converted on the host: "
                          f"profiled for real in tests/test_{name}.py")
            else:
                try:
                    get_profiler(name, Settings(device=device, threads=1))
                    reason = None
                except ProfilerError as exc:
                    reason = str(exc)
            out.append(pytest.param(name, device, id=f"{name}-{device}",
                                    marks=pytest.mark.skipif(reason is not None,
                                                             reason=reason or "")))
    return out


BACKENDS = _registered()


def test_the_registered_backends_are_tested():
    names = {p.values[0] for p in BACKENDS}
    assert {"onnxruntime", "openvino", "torch", "tensorrt"} <= names
    runnable = {p.values[0] for p in BACKENDS if not any(m.args[0] for m in p.marks)}
    assert {"onnxruntime", "openvino", "torch"} <= runnable  # this project's CI installs them
    from pathlib import Path

    from hwnas_profilers.registry import backend_class

    here = Path(__file__).parent
    for name in names - runnable:  # a converted-bundle backend has its own real tests
        if backend_class(name).bundle_format != "onnx":
            assert (here / f"test_{name}.py").is_file(), name


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_profile_small_bundle(bundle, tmp_path, backend, device):
    from hwnas.arch import Architecture
    from hwnas.tables.device import load_device_table

    root, space = bundle
    out = tmp_path / "t.json"
    t = profile_bundle(root, backend, out, Settings(device=device, threads=1), QUICK)
    assert t["meta"]["status"] == "complete"
    assert t["meta"]["backend"] == backend and t["meta"]["runtime_version"]
    assert all(e["status"] == "ok" and e["median_ms"] > 0 for e in t["entries"].values())
    table = load_device_table(out)
    assert not table.missing(space)
    pred = table.predict(space, Architecture.of(space, [layer.choices[0] for layer in space.layers]))
    assert pred.latency_ms > 0
    assert table.calibration.fitted_on == 2
    # the median and p90 each with a line of their own, fitted on the same networks
    assert {"median", "p90"} <= set(table.statistics())
    arch = Architecture.of(space, [layer.choices[0] for layer in space.layers])
    for stat in table.statistics():
        p = table.predict(arch, space, statistic=stat)
        assert p.figure == stat and p.latency_ms > 0
        assert sum(v for _, v in p.layers) == pytest.approx(p.latency_ms, rel=1e-9)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_measure_one_network(bundle, backend, device):
    root, _ = bundle
    r = measure_model(root / "networks" / "net000.onnx", backend,
                      Settings(device=device, threads=1), QUICK)
    assert r["median_ms"] > 0 and r["n"] >= 4 and r["overhead_ms"] >= 0
    json.dumps(r)


@pytest.mark.skipif(not _has("onnxruntime"), reason="onnxruntime not installed")
def test_measure_models_in_one_interleaved_run(bundle, tmp_path):
    """Several models (3 sessions each, the fastest) and other items in one run; an
    other that cannot load is recorded with its reason, a model that cannot is refused."""
    from hwnas_profilers.bundle_run import measure_models
    from hwnas_profilers import ProfilerError, Stats

    root, _ = bundle
    nets = sorted((root / "networks").glob("*.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    models, others = measure_models({"a": (nets[0], None), "b": (nets[1], None)}, "onnxruntime",
                                    Settings(threads=1), QUICK,
                                    others={"x": (nets[0], None), "broken": (bad, None)})
    assert set(models) == {"a", "b"}
    for r in models.values():
        assert len(r["session_figures_ms"]) == 3
        assert r["figure_ms"] == min(r["session_figures_ms"]) > 0
    assert isinstance(others["x"], Stats) and isinstance(others["broken"], str)
    with pytest.raises(ProfilerError, match="cannot load"):
        measure_models({"bad": (bad, None)}, "onnxruntime", Settings(threads=1), QUICK)


@pytest.mark.skipif(not _has("onnxruntime"), reason="onnxruntime not installed")
def test_onnxruntime_session_settings():
    p = get_profiler("onnxruntime", Settings(threads=2))
    so = p._options()
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.skipif(not _has("onnxruntime"), reason="onnxruntime not installed")
def test_unsupported_combination_is_a_clear_error():
    from hwnas_profilers import ProfilerError, Unsupported

    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(Unsupported, match="cuda"):
            get_profiler("onnxruntime", Settings(device="cuda"))
    with pytest.raises(ProfilerError, match="unknown device"):
        get_profiler("onnxruntime", Settings(device="tpu"))


@pytest.mark.skipif(not (_has("onnxruntime") and _has("onnx")), reason="onnxruntime/onnx absent")
def test_fp16_from_a_float16_copy_and_engine_files_run_as_they_are(bundle, tmp_path):
    from hwnas_profilers.backends import fp16_model, in_precision, onnx_precision, qdq_model

    root, _ = bundle
    net = root / "networks" / "net000.onnx"
    r = measure_model(net, "onnxruntime", Settings(precision="fp16"), QUICK)
    assert r["median_ms"] > 0 and r["meta"]["precision"] == "fp16"
    half = fp16_model(net)
    assert onnx_precision(net) == "fp32" and onnx_precision(half) == "fp16"
    q = qdq_model(net, (1, 3, 32, 32))
    for f, p in [(half, "fp16"), (q, "int8")]:
        assert in_precision(f, p, None) == f  # already in that precision: measured as is


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_from_qdq(bundle, tmp_path, backend):
    if not (_has(backend) and _has("onnx")):
        pytest.skip(f"{backend}/onnx absent")
    root, _ = bundle
    r = measure_model(root / "networks" / "net000.onnx", backend, Settings(precision="int8"),
                      QUICK)
    assert r["median_ms"] > 0 and r["meta"]["precision"] == "int8"


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA GPU")
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_gpu_paths(bundle, backend):
    from hwnas_profilers import Unsupported

    root, _ = bundle
    try:
        get_profiler(backend, Settings(device="cuda"))
    except Unsupported as exc:
        pytest.skip(f"{backend} has no CUDA device here: {exc}")
    r = measure_model(root / "networks" / "net000.onnx", backend, Settings(device="cuda"), QUICK)
    assert r["median_ms"] > 0


@pytest.mark.skipif(not (_has("onnxruntime") and _has("onnx") and _has("torch")),
                    reason="onnxruntime/onnx/torch absent")
def test_int8_copy_of_fresh_weights_fuses_like_trained_ones(tmp_path):
    """Equal initializers (zero BN biases of fresh weights) export as Identity aliases; the
    int8 copy inlines them so every convolution quantizes (and fuses) as in a trained net."""
    import onnx
    import onnxruntime as ort
    import torch

    from hwnas.nn.export import export_onnx
    from hwnas_profilers.backends import qdq_model

    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU())
    for m in net:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.zeros_(m.bias)
    src = export_onnx(net, (4, 16, 16), tmp_path / "two.onnx")
    assert any(n.op_type == "Identity" for n in onnx.load(str(src)).graph.node)
    q = qdq_model(src, (1, 4, 16, 16))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(q), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QLinearConv") == 2 and "Conv" not in ops
