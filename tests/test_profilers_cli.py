"""Commands: ``python -m hwnas_profilers`` and ``hwnas profile|measure``; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwnas.cli import main as hwnas_main


def _profilers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas_profilers", *args], capture_output=True,
                          text=True, timeout=120)


def _one_line_exit2(r) -> None:
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_profilers_backends_lists_entry_points():
    r = _profilers("backends")
    assert r.returncode == 0
    assert {"onnxruntime", "openvino", "torch", "tensorrt"} <= set(r.stdout.split())


@pytest.mark.parametrize("args", [
    ("profile", "/nonexistent/bundle", "--backend", "onnxruntime", "--out", "/tmp/x.json"),
    ("profile", ".", "--backend", "nope", "--out", "/tmp/x.json"),
    ("measure", "/nonexistent.onnx", "--backend", "onnxruntime"),
    ("measure", "pyproject.toml", "--backend", "onnxruntime"),
    ("profile", ".", "--backend", "onnxruntime", "--precision", "fp8", "--out", "x"),
])
def test_profilers_bad_input(args):
    _one_line_exit2(_profilers(*args))


def test_profilers_bad_manifest_and_truncated_table(tmp_path):
    (tmp_path / "manifest.json").write_text('{"schema": 1, "kind": "hwnas.block_bun')
    _one_line_exit2(_profilers("profile", str(tmp_path), "--backend", "onnxruntime",
                               "--out", str(tmp_path / "t.json")))
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"schema": 1, "kind": "hwnas.block_bundle", "space": "s", "space_id": "x",
         "blocks": [], "networks": []}))
    (tmp_path / "t.json").write_text('{"schema": 1, "kind": "hwnas.dev')
    r = _profilers("profile", str(tmp_path), "--backend", "onnxruntime", "--out",
                   str(tmp_path / "t.json"), "--resume")
    _one_line_exit2(r)
    assert "not valid JSON" in r.stderr
    (tmp_path / "t.json").write_text(json.dumps({"schema": 9, "kind": "hwnas.device_table"}))
    r = _profilers("profile", str(tmp_path), "--backend", "onnxruntime", "--out",
                   str(tmp_path / "t.json"), "--resume")
    _one_line_exit2(r)
    assert "schema 9" in r.stderr


def test_hwnas_bad_input_exit_2(tmp_path, capsys):
    assert hwnas_main(["measure", str(tmp_path / "no.onnx"), "--backend", "onnxruntime"]) == 2
    assert hwnas_main(["profile", "--space", "no-such-space", "--backend", "onnxruntime",
                       "--out", str(tmp_path / "t.json")]) == 2
    assert hwnas_main(["profile", "--space", "tiny-32", "--backend", "nope",
                       "--out", str(tmp_path / "t.json")]) == 2
    (tmp_path / "t.json").write_text("{}")
    assert hwnas_main(["profile", "--space", "tiny-32", "--backend", "onnxruntime",
                       "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "Traceback" not in err


def test_missing_runtime_names_the_extra():
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    r = _profilers("measure", "x.onnx", "--backend", "tensorrt", "--device", "cuda")
    _one_line_exit2(r)
    assert "pip install 'hwnas[tensorrt]'" in r.stderr


@pytest.mark.slow
def test_hwnas_profile_tiny_quick(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    out = tmp_path / "t.json"
    rc = hwnas_main(["profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
                     "--calibration-nets", "2", "--out", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "complete" and summary["blocks"] == 42
    from hwnas.tables.device import load_device_table

    assert not load_device_table(out).missing(__import__("hwnas").load_space("tiny-32"))
