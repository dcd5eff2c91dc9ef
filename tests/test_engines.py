"""Engines: every registered emitter against one contract, real runtimes, real files.

A fresh (untrained) tiny-32 supernet is enough here: the tests check that each engine file
is written, loads in its own runtime, matches PyTorch, is measured, and that bad input
leaves nothing behind. Accuracy figures come from benchmarks/engines_bench.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import has, schema_check

pytestmark = pytest.mark.skipif(not (has("torch") and has("onnx") and has("sklearn")),
                                reason="needs the torch extra (torch, onnx, scikit-learn)")

ARCH = "tiny-32:k3e6,skip,k3e3,k7e6,k5e3,skip"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    from hwnas.spaces import load_space
    from hwnas.train.checkpoint import Checkpoint, save_checkpoint
    from hwnas.train.supernet import Supernet

    space = load_space("tiny-32")
    torch.manual_seed(0)
    net = Supernet(space)
    path = tmp_path_factory.mktemp("sn") / "supernet.pt"
    save_checkpoint(path, Checkpoint(space, space, {"seed": 0, "val_fraction": 0.3}, {},
                                     net.state_dict()))
    return path


def _export(run_cli, ckpt, out, *extra):
    rc, stdout, err = run_cli("export", ARCH, "--supernet", ckpt, "--out", out, "--quick",
                              "--json", *extra)
    return rc, (json.loads(stdout) if rc == 0 else None), err


# ------------------------------------------------------------------ contract
def test_registry_lists_the_builtin_emitters():
    from hwnas.engines import available_emitters

    assert {"onnxruntime", "openvino", "tensorrt", "torch-aoti"} <= set(available_emitters())


def _combos():
    from hwnas.engines import available_emitters, emitter_class

    for name in available_emitters():
        cls = emitter_class(name)
        for dev, precs in cls.precisions.items():
            for p in precs:
                yield name, dev, p


@pytest.mark.parametrize("name,device,precision", list(_combos()))
def test_emitter_contract(name, device, precision):
    """Each (emitter, device, precision) it declares either builds or says in one line why
    not (missing runtime, no such device, precision not executed here)."""
    from hwnas.engines import EngineError, get_emitter
    from hwnas.errors import MissingDependency

    try:
        em = get_emitter(name, device, precision)
    except (EngineError, MissingDependency) as exc:
        msg = str(exc)
        assert "\n" not in msg and len(msg) < 400
        pytest.skip(f"{name} {device} {precision}: {msg}")
    assert em.suffix.startswith(".") and em.profiler
    rt = em.runtime()
    assert rt["version"]
    from hwnas_profilers import available_backends

    assert em.profiler in available_backends()


# ---------------------------------------------------------------- real engines
@pytest.mark.parametrize("backend,precision,extra", [
    ("onnxruntime", "fp32", ()),
    ("onnxruntime", "fp16", ()),
    ("onnxruntime", "int8", ()),
    ("openvino", "fp32", ()),
    ("openvino", "int8", ("--ptq", "nncf")),
])
def test_export_engine_verified_and_measured(run_cli, ckpt, tmp_path, backend, precision, extra):
    if not has(backend) or (extra and not has("nncf")):
        pytest.skip(f"{backend} (or nncf) is not installed")
    out = tmp_path / "eng"
    rc, m, err = _export(run_cli, ckpt, out, "--backend", backend, "--precision", precision,
                         "--data", "digits", *extra)
    assert rc == 0, err
    schema_check(m)
    eng = m["engine"]
    assert (eng["backend"], eng["precision"]) == (backend, precision)
    for f, digest in eng["sha256"].items():  # every engine file is there, as recorded
        assert hashlib.sha256((out / f).read_bytes()).hexdigest() == digest
    assert Path(eng["path"]) == out / eng["file"] and Path(eng["path"]).is_absolute()
    par = m["parity"]
    if precision == "fp32":
        assert par["max_abs_diff"] <= 1e-4 and par["ok"]
    else:
        assert par["top1_agreement"] > 0.5  # untrained net: a loose floor, not the target
    lat = m["latency"]
    assert lat["measured_ms"] > 0 and lat["measured_n"] > 0
    # the shipped tiny-32 CPU tables (fp32, int8) carry their reference floor: the manifest
    # says how the host ran the same reference graph while the engine was measured
    assert (lat["predicted_ms"] is None) == (precision == "fp16")
    if precision != "fp16":
        assert lat["table_reference_floor_ms"] > 0 and lat["reference_floor_ms"] > 0
        assert lat["host_drift"] == pytest.approx(
            lat["reference_floor_ms"] / lat["table_reference_floor_ms"] - 1)
    assert m["preprocessing"]["normalise"]["std"] > 0
    assert m["preprocessing"]["labels"] == [str(i) for i in range(10)]  # digits 0-9
    # preprocessing, labels and architecture travel inside the engine file as well
    meta = _engine_metadata(out / eng["file"])
    assert json.loads(meta["hwnas.preprocessing"]) == m["preprocessing"]
    assert json.loads(meta["hwnas.labels"]) == m["preprocessing"]["labels"]
    assert meta["hwnas.architecture"] == ",".join(m["architecture"]["choices"])
    assert 0 <= m["accuracy"]["val_engine"] <= 1
    from hwnas_profilers.backends import onnx_precision

    src = out / "source" / {"fp32": "model_fp32.onnx", "fp16": "model_fp16.onnx",
                            "int8": "model_int8_qdq.onnx"}[precision]
    if not (backend == "openvino" and extra):
        assert onnx_precision(src) == precision  # precision lives in the model file
    # the engine file measures again on its own, the manifest supplying shape and backend
    rc, stdout, err = run_cli("measure", out / eng["file"], "--quick", "--json")
    assert rc == 0, err
    assert json.loads(stdout)["median_ms"] > 0


def _engine_metadata(engine: Path) -> dict[str, str]:
    """The hwnas.* metadata as each runtime reads it back from the engine file."""
    if engine.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(engine), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)
    import openvino as ov

    model = ov.Core().read_model(str(engine))
    return {f"hwnas.{k}": model.get_rt_info(["hwnas", k]).astype(str)
            for k in ("preprocessing", "labels", "architecture", "space")}


@pytest.mark.skipif(not has("openvino"), reason="openvino is not installed")
def test_openvino_int8_ir_runs_quantized(run_cli, ckpt, tmp_path):
    rc, m, err = _export(run_cli, ckpt, tmp_path / "ov", "--backend", "openvino",
                         "--precision", "int8", "--data", "digits")
    assert rc == 0, err
    xml = (tmp_path / "ov" / "model.xml").read_text()
    assert "FakeQuantize" in xml or "FakeConvert" in xml  # int8 in the IR itself
    assert m["runtime"]["weights"].startswith("fp32")


@pytest.mark.skipif(not has("nncf"), reason="nncf is not installed")
def test_qat_int8_engine(run_cli, ckpt, tmp_path):
    rc, m, err = _export(run_cli, ckpt, tmp_path / "q", "--backend", "onnxruntime",
                         "--precision", "int8", "--qat", "--qat-epochs", "0.1",
                         "--data", "digits")
    assert rc == 0, err
    q = m["quantization"]
    assert q["method"].startswith("quantization-aware") and q["steps"] >= 1
    assert "val_int8_torch_fakequant" in m["accuracy"]
    assert (tmp_path / "q" / "source" / "model_fp32_qat.onnx").is_file()


@pytest.mark.heavy
def test_torch_aoti_cpu_package(run_cli, ckpt, tmp_path, monkeypatch):
    import torch

    if not hasattr(torch._inductor, "aoti_compile_and_package"):
        pytest.skip("this torch has no AOTInductor packaging")
    # compiled for the engine's measured threads (1 here), not the process's 2; and the
    # process has its 2 back afterwards (the measurement set torch's count too)
    real, seen = torch._inductor.aoti_compile_and_package, []
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package",
                        lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    torch.set_num_threads(2)  # the autouse fixture gives the next test its count back
    rc, m, err = _export(run_cli, ckpt, tmp_path / "aoti", "--backend", "torch-aoti")
    assert torch.get_num_threads() == 2
    assert rc == 0, err
    assert seen == [1] and m["engine"]["compiled_for_threads"] == 1 == m["engine"]["threads"]
    assert m["engine"]["file"] == "model.pt2" and m["parity"]["max_abs_diff"] <= 1e-4
    assert m["latency"]["measured_ms"] > 0
    lat = m["latency"]
    # no shipped torch CPU table: no prediction, said so; an eager table would be flagged
    assert lat["predicted_ms"] is None and "no device table" in lat["note"]


def test_torch_export_cpu_program(run_cli, ckpt, tmp_path):
    rc, m, err = _export(run_cli, ckpt, tmp_path / "ep", "--backend", "torch-export",
                         "--data", "digits")
    assert rc == 0, err
    assert m["parity"]["max_abs_diff"] <= 1e-4 and m["latency"]["measured_ms"] > 0
    from hwnas_profilers.backends.torch import pt2_kind

    assert pt2_kind(tmp_path / "ep" / "model.pt2") == "export"


def test_aoti_load_crash_becomes_a_clear_error(tmp_path):
    """A package whose loading kills the process (as on torch 2.11 + CUDA) is refused in
    one line: the load is tried in a child process first."""
    import zipfile

    from hwnas_profilers import ProfilerError
    from hwnas_profilers.backends.torch import probe_aoti_load, pt2_kind

    bad = tmp_path / "model.pt2"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("model/data/aotinductor/model/x.so", b"\x7fELF not really")
    assert pt2_kind(bad) == "aoti"
    with pytest.raises(ProfilerError, match="cannot load the AOTInductor package"):
        probe_aoti_load(bad)


# ------------------------------------------------------------------ bad input
def _listing(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("args,needle", [
    (("--backend", "nosuch"), "unknown engine backend"),
    (("--backend", "tensorrt", "--device", "cuda"), "tensorrt"),
    (("--backend", "torch-aoti", "--precision", "int8"), "does not support precision int8"),
    (("--backend", "onnxruntime", "--qat"), "--precision int8"),
    (("--backend", "onnxruntime", "--precision", "int8", "--qat"), "need --data"),
])
def test_bad_requests_exit_2_before_any_work(run_cli, ckpt, tmp_path, args, needle):
    rc, _, err = run_cli("export", ARCH, "--supernet", ckpt, "--out", tmp_path / "x", *args)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_arch_of_another_space_and_foreign_checkpoint(run_cli, ckpt, tmp_path):
    rc, _, err = run_cli("export", "proxyless-mobile:" + ",".join(["k3e3"] * 21), "--supernet",
                         ckpt, "--backend", "onnxruntime", "--out", tmp_path / "x")
    assert rc == 2 and "space" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc, _, err = run_cli("export", ARCH, "--supernet", bad, "--backend", "onnxruntime",
                         "--out", tmp_path / "y")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_existing_out_refused_and_force_keeps_old_until_new_is_complete(run_cli, ckpt, tmp_path,
                                                                        monkeypatch):
    out = tmp_path / "eng"
    rc, _, err = _export(run_cli, ckpt, out, "--backend", "onnxruntime", "--no-measure")
    assert rc == 0, err
    before = _listing(out)
    rc, _, err = _export(run_cli, ckpt, out, "--backend", "onnxruntime", "--no-measure")
    assert rc == 2 and "--force" in err and _listing(out) == before

    # a runtime that fails to build (its own error, in one line) leaves the old engine whole
    from hwnas.engines.ort import OrtEmitter

    def broken(self, files, out_dir):
        (out_dir / "model.onnx").write_bytes(b"half")
        raise self.failed("optimise model.onnx", RuntimeError("out of\nmemory"))

    monkeypatch.setattr(OrtEmitter, "emit", broken)
    rc, _, err = _export(run_cli, ckpt, out, "--backend", "onnxruntime", "--force")
    assert rc == 2 and "out of memory" in err and len(err.strip().splitlines()) == 1
    assert _listing(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["eng"]  # no staging folder left


def test_unwritable_parent_is_one_line(run_cli, ckpt, tmp_path):
    parent = tmp_path / "file"
    parent.write_text("x")
    rc, _, err = _export(run_cli, ckpt, parent / "eng", "--backend", "onnxruntime")
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_export_exits_3_when_parity_is_not_met(run_cli, ckpt, tmp_path, monkeypatch):
    """A failed check is an exit status a pipeline can gate on; the engine stays written."""
    import hwnas.engines.build as build

    real = build._parity

    def strict(*a, **k):  # the real comparison, judged against an impossible criterion
        d = real(*a, **k)
        d["criterion"], d["ok"] = "max_abs_diff <= -1 (forced)", False
        return d

    monkeypatch.setattr(build, "_parity", strict)
    rc, stdout, err = run_cli("export", ARCH, "--supernet", ckpt, "--out", tmp_path / "e",
                              "--backend", "onnxruntime", "--quick", "--no-measure", "--json")
    assert rc == 3, err
    assert json.loads(stdout)["parity"]["ok"] is False
    assert err.count("\n") == 1 and "parity against PyTorch not met" in err
    assert (tmp_path / "e" / "manifest.json").is_file()


@pytest.mark.skipif(not (has("openvino") and has("onnxruntime")), reason="needs openvino and "
                    "onnxruntime")
def test_openvino_engine_says_how_it_runs_as_measured(run_cli, ckpt, tmp_path):
    """The IR carries its measured settings (rt_info runtime_options) and the manifest names
    the load call; what a plain ``compile_model`` does on this CPU is measured and said (a
    CPU with BF16 runs an fp32 IR in bf16 unless told otherwise)."""
    import onnxruntime as ort
    import openvino as ov

    rc, m, err = _export(run_cli, ckpt, tmp_path / "ov", "--backend", "openvino",
                         "--data", "digits", "--no-measure")
    assert rc == 0, err
    rc, mo, err = _export(run_cli, ckpt, tmp_path / "ort", "--backend", "onnxruntime",
                          "--data", "digits", "--no-measure")
    assert rc == 0, err
    xml = tmp_path / "ov" / "model.xml"
    core = ov.Core()
    model = core.read_model(str(xml))
    load = m["engine"]["load"]
    assert load["config"]["INFERENCE_PRECISION_HINT"] == "f32"
    for k, v in load["config"].items():
        assert model.get_rt_info(["runtime_options", k]).astype(str) == v
    x = np.random.default_rng(3).standard_normal(
        (8, *m["engine"]["input_shape"][1:])).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "ort" / mo["engine"]["file"]),
                                providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i:i + 1]})[0]
                          for i in range(len(x))])
    tuned = core.compile_model(str(xml), "CPU", load["config"])
    got = np.concatenate([tuned({0: x[i:i + 1]})[0] for i in range(len(x))])
    assert np.max(np.abs(got - ref)) <= 1e-4
    plain = core.compile_model(str(xml), "CPU")
    prec = str(plain.get_property("INFERENCE_PRECISION_HINT"))
    d = m["engine"]["default_load"]
    assert d["runs_as_measured"] == ("float32" in prec)
    if not d["runs_as_measured"]:  # e.g. bf16: said in the manifest and by export
        assert "not as measured" in d["note"] and d["max_abs_diff_vs_measured_load"] > 1e-4


def test_the_old_network_module_still_imports_the_split_steps():
    from hwnas.engines import finetune, model_file, network, quantize

    for name in network.__all__:
        home = next(m for m in (finetune, model_file, quantize) if hasattr(m, name))
        assert getattr(network, name) is getattr(home, name), name
    assert {"standalone", "fold_bn", "export_fp32", "ptq_onnx", "qat"} <= set(network.__all__)
