"""The main job (``hwnas run``) end to end on the embedded default, at smoke settings."""

from __future__ import annotations

import json

import pytest

from conftest import has

pytestmark = pytest.mark.skipif(not (has("torch") and has("onnxruntime") and has("sklearn")),
                                reason="needs the host extras (torch, onnxruntime, scikit-learn)")


def test_run_smoke_writes_manifests_and_resumes(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["run", "--out", out, "--epochs", "1", "--later-paths", "1", "--finetune-steps", "2",
            "--quick", "--json"]
    rc, stdout, err = run_cli(*argv)
    assert rc == 0, err
    summary = json.loads(stdout)
    assert 1 <= len(summary["results"]) <= 3  # three budgets spread over the frontier
    front = json.loads((out / "frontier_onnxruntime_fp32.json").read_text())
    assert summary["results"][-1]["choices"] == front[-1]["choices"]  # the best is reachable
    for r in summary["results"]:
        man = json.loads(open(r["manifest"]).read())
        assert man["kind"] == "hwnas.engine_manifest"
        assert "onnxruntime_fp32" in r["manifest"]
        assert man["latency"]["predicted_ms"] <= man["budget_ms"] + 1e-9
        assert man["latency"]["measured_ms"] > 0
        assert man["parity"]["max_abs_diff"] < 1e-4
        assert man["engine"]["file"] == "model.onnx"
        assert len(man["architecture"]["choices"]) == 6
        assert man["preprocessing"]["normalise"]["std"] > 0
    assert (out / "train" / "accuracy_table.json").is_file()
    # a second run reuses the table, the device table and every engine (nothing rebuilt)
    table_before = (out / "train" / "accuracy_table.json").read_bytes()
    manifests = {r["manifest"]: open(r["manifest"], "rb").read() for r in summary["results"]}
    rc, stdout, err = run_cli(*argv)
    assert rc == 0, err
    assert (out / "train" / "accuracy_table.json").read_bytes() == table_before
    assert {k: open(k, "rb").read() for k in manifests} == manifests


def test_run_bad_input_exit_2(run_cli, tmp_path):
    rc, _, err = run_cli("run", "--out", tmp_path / "r", "--budget-ms", "fast")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    rc, _, err = run_cli("run", "--out", tmp_path / "r", "--space", "no-such-space")
    assert rc == 2 and "unknown space" in err
    # caught before any training: nothing is written
    for argv, needle in [(("--backend", "onnx"), "unknown engine backend"),
                         (("--backend", "tensorrt"), "tensorrt"),
                         (("--budget-ms", "inf"), "finite"),
                         (("--data", str(tmp_path / "none.npz")), "does not exist")]:
        rc, _, err = run_cli("run", "--out", tmp_path / "r2", *argv)
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r2").exists()
