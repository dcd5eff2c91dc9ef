"""ExecuTorch (XNNPACK delegate): the profiler backend, the host-side bundle writer, the
engine emitter and bad input, with the real runtime.

The runtime tests skip with a reason where ``executorch`` is not installed, or where the
installed hwnas predates the ``executorch`` entry points (reinstall: ``pip install -e .``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import has

HAS_ET = has("executorch") and has("torch")


def _registered() -> bool:
    from hwnas_profilers.registry import available_backends

    return "executorch" in available_backends()


needs_et = pytest.mark.skipif(not HAS_ET, reason="executorch is not installed "
                              "(pip install 'hwnas[executorch]')")
needs_entry_points = pytest.mark.skipif(HAS_ET and not _registered(), reason=(
    "the installed hwnas has no executorch entry points: reinstall it (pip install -e .)"))
ARCH = "tiny-32:k3e6,skip,k3e3,k7e6,k5e3,skip"


# ---------------------------------------------------------------- no runtime needed
def test_precision_file_is_one_naming_rule():
    from hwnas_profilers.backends.executorch import precision_file

    assert precision_file("b/K.pte", "int8") == Path("b/K.int8.pte")
    assert precision_file("b/K.int8.pte", "fp32") == Path("b/K.pte")
    assert precision_file("b/K.pte", "fp32") == Path("b/K.pte")
    assert precision_file("b/k3.e6.pte", "int8") == Path("b/k3.e6.int8.pte")


@pytest.mark.parametrize("argv", [
    ["blocks", "export", "--space", "tiny-32", "--backend", "executorch", "--out", "{out}"],
    ["export", ARCH, "--supernet", "{out}/none.pt", "--backend", "executorch", "--out",
     "{out}/e"]])
def test_missing_executorch_is_one_line_naming_the_extra(tmp_path, argv):
    """Without executorch: exit 2, one line naming ``hwnas[executorch]``, nothing written."""
    if not _registered():
        pytest.skip("the installed hwnas has no executorch entry points (pip install -e .)")
    if not has("torch"):
        pytest.skip("the host side needs torch")
    argv = [a.replace("{out}", str(tmp_path / "b")) for a in argv]
    code = ("import sys; sys.modules['executorch'] = None\n"
            "from hwnas.cli import main\n"
            f"sys.exit(main({argv!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'hwnas[executorch]'" in lines[0], r.stderr
    assert not (tmp_path / "b" / "manifest.json").exists()


# ------------------------------------------------------------------ the runtime
def _pte(tmp_path: Path, module, shape, precision: str = "fp32", name: str = "m.pte") -> Path:
    from hwnas.engines.executorch import program_bytes

    path = tmp_path / name
    path.write_bytes(program_bytes(module, shape, precision))
    return path


@pytest.fixture(scope="module")
def conv_pte(tmp_path_factory):
    if not (HAS_ET and _registered()):
        pytest.skip("needs executorch and the executorch entry points")
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU6()).eval()
    return _pte(tmp_path_factory.mktemp("etc"), net, (1, 4, 8, 8)), net


@needs_et
@needs_entry_points
@pytest.mark.parametrize("content", [b"", b"hello, not a model", "truncated", "schema"])
def test_bad_pte_files_are_one_line(conv_pte, tmp_path, content):
    from hwnas_profilers.cli import main

    good = conv_pte[0].read_bytes()
    data = {"truncated": good[:len(good) // 3],
            "schema": good[:4] + b"ET09" + good[8:]}.get(content, content)
    bad = tmp_path / "bad.pte"
    bad.write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "hwnas_profilers", "measure", str(bad),
                        "--backend", "executorch", "--quick"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "bad.pte" in err[0] and "Traceback" not in r.stderr, r.stderr
    if content == "schema":
        assert "ET09" in err[0]
    assert main(["measure", str(bad), "--backend", "executorch", "--threads", "4096"]) == 2


@needs_et
@needs_entry_points
def test_threads_beyond_the_cores_refused_and_pool_given_back():
    import executorch.extension.pybindings.portable_lib as binding

    from hwnas_profilers import ProfilerError, Settings, get_profiler
    from hwnas_profilers.bounds import cores

    with pytest.raises(ProfilerError, match="cores"):
        get_profiler("executorch", Settings(threads=cores() + 1))
    with pytest.raises(ProfilerError, match="cannot measure"):
        get_profiler("executorch", Settings(precision="fp16"))
    before = binding._threadpool_get_thread_count()
    with get_profiler("executorch", Settings(threads=1)):
        assert binding._threadpool_get_thread_count() == 1
    assert binding._threadpool_get_thread_count() == before


@needs_et
@needs_entry_points
def test_program_runs_in_the_delegate_and_precision_is_checked(conv_pte, tmp_path):
    """The program matches torch, its precision marker keeps an fp32 file out of an int8
    table, and an int8 copy beside it is measured instead."""
    import torch

    from hwnas_profilers import ProfilerError, Protocol, Settings, get_profiler, measure_model

    path, net = conv_pte
    with get_profiler("executorch", Settings()) as prof:
        runner = prof.load(path, (1, 4, 8, 8))
        x = torch.randn(1, 4, 8, 8)
        got = runner.run([x])[0]
        with torch.no_grad():
            assert float((got - net(x)).abs().max()) <= 1e-5
    with pytest.raises(ProfilerError, match="no int8 copy"):
        measure_model(path, "executorch", Settings(precision="int8"), Protocol.quick())
    shutil.copy(path, tmp_path / "m.pte")
    _pte(tmp_path, net, (1, 4, 8, 8), "int8", "m.int8.pte")
    r = measure_model(tmp_path / "m.pte", "executorch", Settings(precision="int8"),
                      Protocol.quick())
    assert r["figure_ms"] > 0 and r["meta"]["precision"] == "int8"
    assert r["meta"]["delegate"] == "XnnpackBackend"


# ------------------------------------------------------------------ bundles
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """An ExecuTorch bundle (fp32 and int8) of a two-layer space with one calibration net."""
    if not (HAS_ET and _registered()):
        pytest.skip("needs executorch and the executorch entry points")
    from hwnas.bundle import export_bundle
    from solver_tables import small_space

    out = tmp_path_factory.mktemp("etb")
    sp = small_space(layers=2, choices=("k3e3", "k5e6"), skip=True, name="et-small")
    m = export_bundle(sp, out, calibration_nets=1, fmt="executorch",
                      precisions=("fp32", "int8"))
    return out, m


@pytest.mark.heavy
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_profile_bundle_for_real(bundle, tmp_path, precision):
    """``hwnas-profilers profile`` of an ExecuTorch bundle: every block measured inside
    XNNPACK, the calibration fitted, the thread count recorded."""
    out, m = bundle
    assert m["format"] == "executorch" and m["input_layout"] == "NCHW"
    table = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "hwnas_profilers", "profile", str(out),
                        "--backend", "executorch", "--precision", precision, "--out",
                        str(table), "--quick"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    t = json.loads(table.read_text())
    meta = t["meta"]
    assert meta["status"] == "complete" and meta["precision"] == precision
    assert meta["runtime"] == "executorch" and meta["delegate"] == "XnnpackBackend"
    assert meta["threads"] == 1 and "1 thread" in meta["threadpool"]
    assert {b["key"] for b in m["blocks"]} == set(t["entries"])
    assert all(e["status"] == "ok" and e["floor_ms"] > 0 for e in t["entries"].values())
    assert meta["networks"]["net000"]["status"] == "ok"


@pytest.mark.heavy
def test_a_block_outside_the_delegate_is_failed_with_its_reason(bundle, tmp_path):
    """A block program with an operator XNNPACK does not take is recorded as failed with
    the operator named: never zero, never a silent run on the portable CPU kernels."""
    import torch

    from hwnas_profilers import Protocol, Settings, profile_bundle

    out, m = bundle
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    victim = m["blocks"][1]

    class Cumsum(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(torch.relu(x), 1)

    _pte(copy, Cumsum(), victim["input_shape"], "fp32", victim["file"])
    t = profile_bundle(copy, "executorch", tmp_path / "t.json", Settings(), Protocol.quick())
    e = t["entries"][victim["key"]]
    assert e["status"] == "failed" and "outside the XNNPACK delegate" in e["reason"]
    assert "aten::cumsum" in e["reason"] and "floor_ms" not in e
    ok = [k for k, v in t["entries"].items() if k != victim["key"]]
    assert ok and all(t["entries"][k]["status"] == "ok" for k in ok)


# ------------------------------------------------------------------ engines
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    if not (HAS_ET and _registered()):
        pytest.skip("needs executorch and the executorch entry points")
    import torch

    from hwnas.spaces import load_space
    from hwnas.train.checkpoint import Checkpoint, save_checkpoint
    from hwnas.train.supernet import Supernet

    space = load_space("tiny-32")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sn") / "supernet.pt"
    save_checkpoint(path, Checkpoint(space, space, {"seed": 0, "val_fraction": 0.3}, {},
                                     Supernet(space).state_dict()))
    return path


@pytest.mark.heavy
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_engine_matches_torch_and_is_measured(run_cli, ckpt, tmp_path, precision):
    out = tmp_path / "eng"
    rc, stdout, err = run_cli("export", ARCH, "--supernet", ckpt, "--out", out, "--backend",
                              "executorch", "--precision", precision, "--quick", "--json")
    assert rc in (0, 3), err  # 3: an untrained int8 net on noise may miss top-1 agreement
    m = json.loads(stdout) if stdout.strip() else json.loads((out / "manifest.json").read_text())
    eng = m["engine"]
    assert eng["file"] == "model.pte" and eng["input_layout"] == "NCHW"
    assert eng["input_shape"] == [1, 3, 32, 32] and eng["input_dtype"] == "float32"
    assert m["runtime"]["delegate"] == "XnnpackBackend"
    par = m["parity"]
    if precision == "fp32":
        assert rc == 0 and par["max_abs_diff"] <= 1e-4 and par["ok"]
        assert m["quantization"] is None
    else:
        q = m["quantization"]
        assert "prepare_pt2e" in q["method"] and q["qat"] is False
        assert np.isfinite(par["max_abs_diff"]) and par["top1_agreement"] > 0.3
    assert m["latency"]["measured_ms"] > 0
    rc, stdout, err = run_cli("measure", out / "model.pte", "--backend", "executorch",
                              "--precision", precision, "--quick", "--json")
    assert rc == 0, err


@pytest.mark.heavy
def test_int8_engine_by_pt2e_qat(run_cli, ckpt, tmp_path):
    """``--qat``: the engine comes from PT2E quantization-aware fine-tuning
    (prepare_qat_pt2e) on the training split, and the manifest says so."""
    out = tmp_path / "q"
    rc, stdout, err = run_cli("export", ARCH, "--supernet", ckpt, "--out", out, "--backend",
                              "executorch", "--precision", "int8", "--qat", "--qat-epochs",
                              "0.05", "--data", "digits", "--quick", "--no-measure", "--json")
    assert rc in (0, 3), err
    m = json.loads((out / "manifest.json").read_text())
    q = m["quantization"]
    assert "prepare_qat_pt2e" in q["method"] and q["qat"] is True and q["steps"] >= 1
    assert m["preprocessing"]["input_layout"] == "NCHW"
    assert 0.0 <= m["accuracy"]["val_engine"] <= 1.0
    assert m["parity"]["top1_agreement"] >= 0.9  # the engine runs the QAT network itself
