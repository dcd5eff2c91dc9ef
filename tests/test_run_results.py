"""Typed results: an engine manifest and a run summary decode and encode to the same JSON,
and what they write conforms to the published schema (the manifest's) and to the schema a
redrawn report reads a summary with."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conftest import schema_check


def _manifest() -> dict:
    """A manifest as the builder writes it, with the run's keys between request and tool."""
    return {"kind": "hwnas.engine_manifest", "schema": 2,
            "architecture": {"space": "tiny-32", "space_id": "abc", "choices": ["k3e3"] * 6},
            "space": "tiny-32", "space_id": "abc",
            "engine": {"backend": "onnxruntime", "precision": "fp32", "device": "cpu",
                       "threads": 1, "file": "model.onnx", "files": ["model.onnx"],
                       "sha256": {"model.onnx": "0" * 64}, "path": "/x/model.onnx"},
            "runtime": {"onnxruntime": "1.0"}, "sources": {"model_fp32.onnx": "1" * 64},
            "quantization": None, "finetune_steps": 2,
            "parity": {"images": 4, "max_abs_diff": 1e-6, "top1_agreement": 1.0, "ok": True},
            "accuracy": {"val_engine": 0.9, "test_engine": 0.88, "test_images": 100},
            "latency": {"measured_ms": 0.31, "predicted_ms": 0.3, "measured_statistic": "floor",
                        "prediction_error": -0.03},
            "device": {"cpu": "x"}, "preprocessing": None, "request": {"backend": "onnxruntime"},
            "budget_ms": 0.4, "device_table": "/x/t.json", "accuracy_table": "/x/a.json",
            "supernet": "/x/s.pt",
            "step_down": {"budget_ms": 0.4, "tried": [{"choices": ["k7e6"] * 6,
                                                       "measured_ms": 0.5}]},
            "tool": "hwnas 0.1.0", "date": "2026-01-01T00:00:00+00:00"}


def test_engine_manifest_round_trip_keeps_every_key_in_order():
    from hwnas.engines.manifest import EngineManifest

    d = _manifest()
    m = EngineManifest.from_json(d)
    assert m.measured_ms == 0.31 and m.choices == ["k3e3"] * 6
    assert m.engine_path == "/x/model.onnx" and m.step_down["tried"][0]["choices"][0] == "k7e6"
    assert json.dumps(m.to_json()) == json.dumps(d)
    schema_check(m.to_json())
    # a key a run adds later stays in the file
    assert m.with_run(measured_with="x").to_json()["measured_with"] == "x"


def test_step_down_reads_a_typed_manifest_as_its_json():
    from hwnas.engines.budget import first_choices, missed, tried
    from hwnas.engines.manifest import EngineManifest

    d = _manifest()
    m = EngineManifest.from_json(d)
    assert first_choices(m) == first_choices(d) == ["k7e6"] * 6
    assert len(tried(m)) == len(tried(d)) == 1
    assert missed(m, 0.3) and not missed(m, 0.4)


def _summary() -> dict:
    row = {"budget_ms": 0.4, "choices": ["k3e3"] * 6, "selected_within_ms": 0.38,
           "meets_budget": True, "first_choices": ["k7e6"] * 6, "steps_down": 1,
           "score": 5.1, "predicted_ms": 0.3, "predicted_upper_ms": 0.33, "statistic": "floor",
           "measured_ms": 0.31, "measured_spread_ms": 0.01, "prediction_error": -0.03,
           "host_drift": None, "val_accuracy": 0.9, "test_accuracy": 0.88, "test_images": 100,
           "parity_max_abs_diff": 1e-6, "top1_agreement": 1.0, "parity_ok": True,
           "engine": "/x/model.onnx", "manifest": "/x/manifest.json",
           "predicted_accuracy": 0.91}
    return {"space": "tiny-32", "space_id": "abc", "data": "digits", "backend": "onnxruntime",
            "precision": "fp32", "statistic": "floor", "device_table": "/x/t.json",
            "budget_margin": {"value": 0.03, "from": "default"}, "data_split": {"train": 1},
            "frontier_points": 12, "results": [row], "report": "/x/report.html"}


def test_run_summary_round_trip_and_schema():
    from hwnas.run.results import CSV_COLUMNS, RunResult, RunSummary
    from hwnas.runfiles import SUMMARY_SCHEMA

    d = _summary()
    s = RunSummary.from_json(d)
    assert isinstance(s.results[0], RunResult) and s.results[0].steps_down == 1
    assert json.dumps(s.to_json()) == json.dumps(d)
    jsonschema.Draft202012Validator(SUMMARY_SCHEMA).validate(s.to_json())
    assert "report" not in RunSummary.from_json({**d, "report": None}).to_json()
    assert len(s.results[0].csv_row()) == len(CSV_COLUMNS)
    assert s.results[0].csv_row()[1] == ",".join(["k3e3"] * 6)


def test_a_result_row_is_made_from_a_typed_manifest():
    pytest.importorskip("torch")
    from hwnas.arch import Architecture
    from hwnas.engines.manifest import EngineManifest
    from hwnas.run.results import RunResult
    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    arch = Architecture.of(sp, [layer.choices[0] for layer in sp.layers])
    r = RunResult.of_engine(0.4, arch, EngineManifest.from_json(_manifest()), 0.38,
                            "/x/manifest.json", 0.91)
    assert r.meets_budget is True and r.steps_down == 1 and r.first_choices == ["k7e6"] * 6
    assert r.measured_ms == 0.31 and r.val_accuracy == 0.9 and r.parity_ok
    assert list(r.to_json()) == list(_summary()["results"][0])
