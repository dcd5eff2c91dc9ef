"""The exact solver on real device tables: imported ProxylessNAS and shipped measured ones."""

from __future__ import annotations

import numpy as np
import pytest
from test_solver_exact import check_budget
from solver_tables import best_within, make_tables

from conftest import LUTS
from hwnas.solver import SolverError, frontier
from hwnas.spaces import load_space
from hwnas.tables.device import load_device_table
from hwnas.tables.foreign import import_foreign

pytest.importorskip("scipy.optimize")


@pytest.fixture(scope="module")
def pixel1():
    return import_foreign(LUTS / "proxylessnas_pixel1_mobile.yaml", "proxylessnas")


def test_imported_proxylessnas_table_against_milp(pixel1):
    acc, _ = make_tables("proxyless-mobile", seed=3)
    pts = frontier(acc, pixel1).points()
    lo, hi = pts[0].latency_ms, pts[-1].latency_ms
    for budget in np.linspace(lo, hi, 6):
        assert check_budget(acc, pixel1, float(budget)) == 1
    sp = load_space("proxyless-mobile")
    best = best_within(acc, pixel1, hi)
    assert best.latency_ms == pytest.approx(pixel1.predict(sp, best).latency_ms)


def test_imported_table_infeasible_budget_names_fastest(pixel1):
    acc, _ = make_tables("proxyless-mobile", seed=1)
    fastest = frontier(acc, pixel1).fastest_ms()
    with pytest.raises(SolverError, match=f"smallest latency any architecture reaches is "
                                          f"{fastest:.4f}"):
        best_within(acc, pixel1, fastest * 0.5)


@pytest.mark.parametrize("name", ["tiny-32_onnxruntime_cpu_fp32", "proxyless-mobile_openvino_cpu_fp32"])
def test_shipped_measured_tables_against_milp(name):
    dev = load_device_table(name)
    acc, _ = make_tables(dev.space, seed=5)
    pts = frontier(acc, dev).points()
    for budget in np.linspace(pts[0].latency_ms, pts[-1].latency_ms, 4):
        assert check_budget(acc, dev, float(budget)) == 1


def test_cli_csv_accuracy_takes_the_device_tables_space(run_cli, tmp_path):
    import json

    acc, _ = make_tables("proxyless-mobile", seed=2)
    acc.save(tmp_path / "acc.csv")
    rc, out, err = run_cli("search", "--accuracy", tmp_path / "acc.csv", "--table",
                           "proxylessnas_pixel1_tflite_fp32", "--budget-ms", "60,90", "--json")
    assert rc == 0, err
    res = json.loads(out)["results"]
    assert [r["latency_ms"] <= b for r, b in zip(res, (60, 90))] == [True, True]
    assert len(res[0]["choices"]) == 21
    rc, _, err = run_cli("search", "--accuracy", tmp_path / "acc.csv", "--table",
                         "ofa_note10_tflite_fp32", "--budget-ms", "60")
    assert rc == 2 and "--space" in err and len(err.strip().splitlines()) == 1
