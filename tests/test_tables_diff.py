"""``hwnas tables diff``: block ratios, Kendall tau of block costs and the frontier
networks that change between two tables of one space (shipped tables, no measurement)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import has


@pytest.mark.skipif(not has("scipy"), reason="scipy (the reference implementation) is absent")
def test_kendall_tau_is_tau_b():
    from scipy.stats import kendalltau

    from hwnas.tables.crossruntime import kendall_tau

    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 6, 30).astype(float)  # many ties on both sides
        y = x + rng.integers(-2, 3, 30)
        assert kendall_tau(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    assert kendall_tau([1.0], [2.0]) is None
    assert kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # one side constant


def test_a_table_against_itself_changes_nothing(run_cli):
    rc, out, err = run_cli("tables", "diff", "tiny-32_onnxruntime_cpu_fp32",
                           "tiny-32_onnxruntime_cpu_fp32", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["rank"]["kendall_tau"] == pytest.approx(1.0)
    assert d["rank"]["layer_tau_min"] == pytest.approx(1.0)
    f = d["frontier"]
    assert f["points_a"] == f["points_b"] == f["common_points"] and f["picks_changed"] == 0
    assert all(p["same"] and p["pick_a_on_b_frontier"] and p["pick_a_within_b_budget"]
               and p["score_gap"] == 0 for p in f["picks"])


def test_onnxruntime_against_openvino(run_cli):
    """Two runtimes on one host: figures differ, the order mostly holds; the frontier
    comparison says at which budgets the picks differ and what A's pick costs on B."""
    rc, out, err = run_cli("tables", "diff", "proxyless-mobile_onnxruntime_cpu_fp32",
                           "proxyless-mobile_openvino_cpu_fp32", "--json")
    assert rc == 0, err
    d = json.loads(out)
    r = d["rank"]
    assert r["blocks"] == 74 and 0.5 < r["kendall_tau"] < 1.0
    assert len(r["layers"]) == 21 and all(-1 <= x["kendall_tau"] <= 1 for x in r["layers"])
    f = d["frontier"]
    assert "stand-in" in f["score"] and f["points_a"] > 10 and f["points_b"] > 10
    assert [p["position"] for p in f["picks"]] == [0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    assert f["picks_changed"] == sum(not p["same"] for p in f["picks"])
    for p in f["picks"]:
        assert p["pick_a_on_b_ms"] > 0 and p["budget_b_ms"] > 0
        assert p["same"] <= p["pick_a_on_b_frontier"]  # a common pick is on B's frontier
        assert p["same"] <= p["pick_a_within_b_budget"]  # ... and fits B's budget
        if p["pick_a_within_b_budget"]:  # B's pick is the best that fits B's budget
            assert p["score_gap"] >= -1e-9
    assert d["median_ratio"] > 0 and 0 <= d["within_10pct"] <= 1


def test_pixel1_tflite_import_against_onnxruntime(run_cli):
    """A phone's TFLite table (imported) against ONNX Runtime on this host: one space."""
    rc, out, err = run_cli("tables", "diff", "proxylessnas_pixel1_tflite_fp32",
                           "proxyless-mobile_onnxruntime_cpu_fp32", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["rank"]["blocks"] >= 70 and d["rank"]["kendall_tau"] is not None
    assert d["frontier"]["points_a"] > 0 and len(d["frontier"]["picks"]) == 6
    rc, text, err = run_cli("tables", "diff", "proxylessnas_pixel1_tflite_fp32",
                            "proxyless-mobile_onnxruntime_cpu_fp32")
    assert rc == 0 and "Kendall tau of block costs" in text and "picks changed" in text


def test_tables_of_two_spaces_are_refused(run_cli):
    rc, _, err = run_cli("tables", "diff", "tiny-32_onnxruntime_cpu_fp32",
                         "proxyless-mobile_onnxruntime_cpu_fp32")
    assert rc == 2 and "different spaces" in err and len(err.strip().splitlines()) == 1


def test_a_real_accuracy_table_scores_the_frontier(run_cli, tmp_path):
    from solver_tables import make_tables

    acc, _ = make_tables("tiny-32", seed=3)
    path = tmp_path / "acc.json"
    acc.save(path)
    rc, out, err = run_cli("tables", "diff", "tiny-32_onnxruntime_cpu_fp32",
                           "tiny-32_openvino_cpu_fp32", "--accuracy", path, "--json")
    assert rc == 0, err
    assert json.loads(out)["frontier"]["score"] == "accuracy table"
