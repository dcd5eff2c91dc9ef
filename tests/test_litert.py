"""LiteRT: the device-side backend (ai-edge-litert only), the host-side converter
(litert-torch), bundles, engines and bad input, with the real runtime.

The runtime tests skip with a reason where ``ai-edge-litert`` (or, for conversion,
``litert-torch``) is not installed, or where the installed hwnas predates the ``litert``
entry points (reinstall: ``pip install -e .``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import has

HAS_RUNTIME = has("ai_edge_litert")
HAS_CONVERTER = HAS_RUNTIME and has("litert_torch") and has("torch")


def _registered() -> bool:
    from hwnas_profilers.registry import available_backends

    return "litert" in available_backends()


needs_runtime = pytest.mark.skipif(not HAS_RUNTIME, reason="ai-edge-litert is not installed "
                                   "(pip install 'hwnas[litert-device]')")
needs_converter = pytest.mark.skipif(not HAS_CONVERTER, reason="litert-torch is not installed "
                                     "(pip install 'hwnas[litert]')")
needs_entry_points = pytest.mark.skipif(HAS_RUNTIME and not _registered(), reason=(
    "the installed hwnas has no litert entry points: reinstall it (pip install -e .)"))


# ---------------------------------------------------------------- no runtime needed
def test_precision_file_is_one_naming_rule():
    from hwnas_profilers.backends.litert import precision_file

    assert precision_file("b/K.tflite", "int8") == Path("b/K.int8.tflite")
    assert precision_file("b/K.int8.tflite", "fp32") == Path("b/K.tflite")
    assert precision_file("b/K.tflite", "fp32") == Path("b/K.tflite")


def _op(i: int, name: str, ins, outs) -> dict:
    return {"index": i, "op_name": name, "inputs": np.array(ins), "outputs": np.array(outs)}


def test_outside_delegate_walks_each_partition():
    """Two partitions around an operator XNNPACK left out: only that one is reported."""
    from hwnas_profilers.backends.litert import outside_delegate

    ops = [_op(0, "CONV_2D", [0, 10], [1]), _op(1, "CUSTOM", [1], [2]),
           _op(2, "CONV_2D", [2, 11], [3]),
           _op(3, "DELEGATE", [0, 10], [1]), _op(4, "DELEGATE", [2, 11], [3])]
    assert outside_delegate(ops) == ["CUSTOM#1"]
    whole = [_op(0, "CONV_2D", [0, 10], [1]), _op(1, "ADD", [1, 0], [2]),
             _op(2, "DELEGATE", [0, 10], [2])]
    assert outside_delegate(whole) == []
    assert outside_delegate(whole[:2]) == ["CONV_2D#0", "ADD#1"]  # no delegate at all


def test_missing_runtime_names_both_extras(monkeypatch):
    from hwnas_profilers import MissingRuntime, Settings
    from hwnas_profilers.backends.litert import LiteRtProfiler

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    with pytest.raises(MissingRuntime) as exc:
        LiteRtProfiler(Settings())
    assert "hwnas[litert-device]" in str(exc.value) and "hwnas[litert]" in str(exc.value)


def test_missing_converter_is_one_line_naming_the_extra(tmp_path):
    """``hwnas blocks export --backend litert`` without litert-torch: exit 2, one line."""
    code = ("import sys; sys.modules['litert_torch'] = None\n"
            "from hwnas.cli import main\n"
            f"sys.exit(main(['blocks', 'export', '--space', 'tiny-32', '--backend', 'litert',"
            f" '--out', {str(tmp_path / 'b')!r}]))")
    if not _registered():
        pytest.skip("the installed hwnas has no litert entry points (pip install -e .)")
    if not has("torch"):
        pytest.skip("the host side needs torch")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "hwnas[litert]" in lines[0] and "litert-torch" in lines[0]
    assert not (tmp_path / "b" / "manifest.json").exists()


# ------------------------------------------------------------------ the runtime
@needs_runtime
def test_own_graphs_run_fully_delegated(tmp_path):
    """The identity and reference graphs written without onnx or a converter load, run
    inside XNNPACK, and compute what they say."""
    from ai_edge_litert.interpreter import Interpreter

    from hwnas_profilers.backends.litert import outside_delegate
    from hwnas_profilers.tflitegraph import write_identity_model, write_reference_model

    for path in (write_identity_model(tmp_path / "i.tflite"),
                 write_reference_model(tmp_path / "r.tflite", channels=4, size=6)):
        it = Interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
        assert outside_delegate(it._get_ops_details()) == []
        d = it.get_input_details()[0]
        x = np.random.default_rng(3).standard_normal(d["shape"]).astype(np.float32)
        it.set_tensor(d["index"], x)
        it.invoke()
        y = it.get_tensor(it.get_output_details()[0]["index"])
        assert y.shape == x.shape
        if path.name == "i.tflite":
            assert np.array_equal(x, y)
        else:
            assert np.allclose(y, _reference(x, 4), atol=1e-5)


def _reference(x: np.ndarray, channels: int) -> np.ndarray:
    """The reference graph in numpy: 2 x (3x3 conv, same padding, ReLU), NHWC."""
    rng = np.random.default_rng(0)
    for _ in range(2):
        w = (rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32)
        p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        h, wd = x.shape[1:3]
        win = np.stack([p[:, i:i + h, j:j + wd, :] for i in range(3) for j in range(3)], -1)
        x = np.maximum(np.einsum("nhwck,ock->nhwo", win, w.reshape(channels, channels, 9)), 0)
    return x


@needs_runtime
@needs_entry_points
@pytest.mark.parametrize("content", [b"", b"hello, not a model", "truncated"])
def test_bad_tflite_files_are_one_line(tmp_path, content):
    from hwnas_profilers.cli import main
    from hwnas_profilers.tflitegraph import reference_model

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(reference_model()[:600] if content == "truncated" else content)
    r = subprocess.run([sys.executable, "-m", "hwnas_profilers", "measure", str(bad),
                        "--backend", "litert", "--quick"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("INFO:")]
    assert len(err) == 1 and str(bad) in err[0] and "Traceback" not in r.stderr
    assert main(["measure", str(bad), "--backend", "litert", "--threads", "4096"]) == 2


@needs_runtime
@needs_entry_points
def test_a_twin_linked_out_of_the_bundle_is_not_opened(tmp_path):
    from hwnas_profilers import ProfilerError, Settings, get_profiler
    from hwnas_profilers.tflitegraph import write_identity_model

    write_identity_model(tmp_path / "K.tflite")
    outside = write_identity_model(tmp_path.parent / f"{tmp_path.name}-elsewhere.tflite")
    (tmp_path / "K.int8.tflite").symlink_to(outside)
    with get_profiler("litert", Settings(precision="int8")) as prof:
        with pytest.raises(ProfilerError, match="link out"):
            prof.load(tmp_path / "K.tflite", None)


@needs_runtime
@needs_entry_points
def test_threads_beyond_the_cores_refused():
    from hwnas_profilers import ProfilerError, Settings, get_profiler
    from hwnas_profilers.backends.litert import usable_cores

    with pytest.raises(ProfilerError, match="cores"):
        get_profiler("litert", Settings(threads=usable_cores() + 1))
    with pytest.raises(ProfilerError, match="cannot measure"):
        get_profiler("litert", Settings(precision="fp16"))


# ------------------------------------------------------- converter + runtime: bundles
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A LiteRT bundle (fp32 and int8) of a three-layer space with one calibration net."""
    if not (HAS_CONVERTER and _registered()):
        pytest.skip("needs litert-torch, ai-edge-litert and the litert entry points")
    from hwnas.bundle import export_bundle
    from solver_tables import small_space

    out = tmp_path_factory.mktemp("ltb")
    sp = small_space(layers=2, choices=("k3e3", "k5e6"), skip=True, name="lt-small")
    m = export_bundle(sp, out, calibration_nets=1, fmt="litert", precisions=("fp32", "int8"))
    return out, m


@pytest.mark.heavy
def test_bundle_holds_both_precisions(bundle):
    out, m = bundle
    assert m["format"] == "litert" and m["input_layout"] == "NHWC"
    for b in m["blocks"] + m["networks"]:
        assert set(b["files"]) == {"fp32", "int8"}
        for f in b["files"].values():
            assert (out / f).read_bytes()[4:8] == b"TFL3"


_NO_TORCH = """
import sys
from hwnas_profilers.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'hwnas'))
print('IMPORTED', heavy)
sys.exit(rc if rc else (9 if heavy else 0))
"""


@pytest.mark.heavy
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_profile_bundle_for_real_without_torch(bundle, tmp_path, precision):
    """``hwnas-profilers profile`` of a LiteRT bundle imports neither torch, TensorFlow
    nor hwnas, measures every block inside XNNPACK, and fits its calibration."""
    out, m = bundle
    table = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-c", _NO_TORCH, "profile", str(out), "--backend",
                        "litert", "--precision", precision, "--out", str(table), "--quick"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "IMPORTED []" in r.stdout
    t = json.loads(table.read_text())
    assert t["meta"]["status"] == "complete" and t["meta"]["precision"] == precision
    assert t["meta"]["runtime"] == "litert" and "XNNPACK" in t["meta"]["delegate"]
    assert {b["key"] for b in m["blocks"]} == set(t["entries"])
    assert all(e["status"] == "ok" and e["floor_ms"] > 0 for e in t["entries"].values())
    assert t["meta"]["overhead"]["floor_ms"] > 0


@pytest.mark.heavy
def test_a_block_outside_the_delegate_is_failed_with_its_reason(bundle, tmp_path):
    """A block whose operators XNNPACK does not take is recorded as failed, never as zero."""
    import shutil

    from hwnas_profilers import Protocol, Settings, profile_bundle
    from hwnas_profilers.backends import litert as lt

    out, m = bundle
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    victim = m["blocks"][1]["key"]
    real = lt.outside_delegate

    def fake(ops):  # what the interpreter reports for a model XNNPACK left partly out
        left = real(ops)
        return left or (["GELU#0"] if _loading[0] == victim else [])

    _loading = [""]
    orig_file = lt.LiteRtProfiler.model_file

    def model_file(self, path):
        _loading[0] = Path(path).stem
        return orig_file(self, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(lt, "outside_delegate", fake)
    mp.setattr(lt.LiteRtProfiler, "model_file", model_file)
    try:
        t = profile_bundle(copy, "litert", tmp_path / "t.json", Settings(), Protocol.quick())
    finally:
        mp.undo()
    e = t["entries"][victim]
    assert e["status"] == "failed" and "not delegated to XNNPACK" in e["reason"]
    assert "GELU#0" in e["reason"] and "floor_ms" not in e


# ------------------------------------------------------------ converter: engines
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    if not (HAS_CONVERTER and _registered()):
        pytest.skip("needs litert-torch, ai-edge-litert and the litert entry points")
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
    rc, stdout, err = run_cli("export", "tiny-32:k3e6,skip,k3e3,k7e6,k5e3,skip",
                              "--supernet", ckpt, "--out", out, "--backend", "litert",
                              "--precision", precision, "--data", "digits", "--quick",
                              "--json")
    assert rc == 0, err
    m = json.loads(stdout)
    eng, pre = m["engine"], m["preprocessing"]
    assert eng["file"] == "model.tflite" and eng["input_layout"] == "NHWC"
    assert eng["input_shape"] == pre["input_shape"] == [1, 32, 32, 3]
    assert pre["input_layout"] == "NHWC" and pre["layout"].startswith("NHWC")
    assert ("quantize" in pre) == (precision == "int8")
    par = m["parity"]
    if precision == "fp32":
        assert par["max_abs_diff"] <= 1e-4 and par["ok"]
        assert eng["input_dtype"] == "float32"
    else:
        assert eng["input_dtype"] == "int8" and "scale" in eng["io"]["input"]
        assert "PT2E" in m["quantization"]["method"]
        assert par["top1_agreement"] > 0.5  # untrained net on noise: a loose floor
    assert m["latency"]["measured_ms"] > 0
    rc, stdout, err = run_cli("measure", out / "model.tflite", "--quick", "--json")
    assert rc == 0, err


@pytest.mark.heavy
def test_qat_is_refused_for_litert(run_cli, ckpt, tmp_path):
    rc, _, err = run_cli("export", "tiny-32:k3e6,skip,k3e3,k7e6,k5e3,skip", "--supernet",
                         ckpt, "--out", tmp_path / "e", "--backend", "litert", "--precision",
                         "int8", "--qat", "--data", "digits", "--quick")
    assert rc == 2 and "post-training" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()
