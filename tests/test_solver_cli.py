"""``hwnas search``: JSON output, files written, exit status 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from solver_tables import best_within, make_tables

from hwnas.arch import Architecture
from hwnas.cli import main
from hwnas.solver import frontier


@pytest.fixture()
def tables(tmp_path):
    acc, dev = make_tables("tiny-32", 5)
    acc.save(tmp_path / "acc.json")
    acc.save(tmp_path / "acc.csv")
    dev.save(tmp_path / "dev.json")
    return acc, dev, tmp_path


def run_json(capsys, *argv):
    rc = main(list(argv) + ["--json"])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_search_json_several_budgets_with_files(tables, capsys):
    acc, dev, tmp = tables
    front = frontier(acc, dev)
    b = [round(float(x), 3) for x in front.latency_ms[[5, len(front) // 2, -1]]]
    d = run_json(capsys, "search", "--accuracy", str(tmp / "acc.json"), "--table",
                 str(tmp / "dev.json"), "--budget-ms", ",".join(map(str, b)),
                 "--out", str(tmp / "arch.json"), "--frontier", str(tmp / "front.json"))
    assert [r["budget_ms"] for r in d["results"]] == b
    for r, budget in zip(d["results"], b):
        best = best_within(acc, dev, budget)
        assert r["choices"] == list(best.choices)
        assert r["latency_ms"] == pytest.approx(best.latency_ms) and r["latency_ms"] <= budget
        assert r["score"] == pytest.approx(best.score)
        assert r["macs"] == best.macs and r["params"] == best.params
        saved = Architecture.from_dict(json.loads(open(r["out"]).read()))
        assert saved.choices == best.choices and saved.latency_ms == pytest.approx(r["latency_ms"])
    assert (tmp / f"arch_{b[0]:g}ms.json").is_file()
    f = json.loads((tmp / "front.json").read_text())
    assert f["kind"] == "hwnas.frontier" and len(f["points"]) == len(front) == d["frontier"]["points"]


def test_search_csv_accuracy_limits_and_objectives(tables, capsys):
    acc, dev, tmp = tables
    budget = float(frontier(acc, dev).latency_ms[-1])
    cap = best_within(acc, dev, budget).params - 1
    d = run_json(capsys, "search", "--accuracy", str(tmp / "acc.csv"), "--space", "tiny-32",
                 "--table", str(tmp / "dev.json"), "--budget-ms", str(budget),
                 "--max-params", str(cap))
    assert d["results"][0]["params"] <= cap
    assert d["results"][0]["choices"] == list(best_within(acc, dev, budget, max_params=cap).choices)
    d = run_json(capsys, "search", "--accuracy", str(tmp / "acc.json"), "--table",
                 str(tmp / "dev.json"), "--budget-ms", str(budget), "--limit", "max_macs=3e6",
                 "--objective", "loss")
    assert d["results"][0]["macs"] <= 3e6 and d["objective"] == "loss"
    floor = best_within(acc, dev, budget).score - 0.05
    d = run_json(capsys, "search", "--accuracy", str(tmp / "acc.json"), "--table",
                 str(tmp / "dev.json"), "--objective", "latency", "--min-score", str(floor))
    assert d["results"][0]["score"] >= floor
    d = run_json(capsys, "search", "--accuracy", str(tmp / "acc.json"), "--table",
                 str(tmp / "dev.json"), "--budget-ms", str(budget), "--method", "random")
    assert d["results"][0]["latency_ms"] <= budget


@pytest.mark.parametrize("extra, message", [
    (["--budget-ms", "0.001"], "smallest latency any architecture reaches"),
    (["--budget-ms", "1", "--limit", "max_parms=5"], "unknown limit 'max_parms'"),
    (["--budget-ms", "fast"], "cannot read 'fast'"),
    (["--budget-ms", "1", "--max-params", "10"], "unreachable"),
    (["--objective", "latency"], "needs --min-score"),
    ([], "needs --budget-ms"),
])
def test_search_bad_input_exits_2_with_one_line(tables, capsys, extra, message):
    _, _, tmp = tables
    rc = main(["search", "--accuracy", str(tmp / "acc.json"), "--table", str(tmp / "dev.json"),
               *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1


def test_search_foreign_tables_exit_2(tables, capsys):
    _, _, tmp = tables
    acc2, _ = make_tables("proxyless-mobile", 0)
    acc2.save(tmp / "other.json")
    rc = main(["search", "--accuracy", str(tmp / "other.json"), "--table", str(tmp / "dev.json"),
               "--budget-ms", "5"])
    err = capsys.readouterr().err
    assert rc == 2 and "is for space tiny-32" in err and err.count("\n") == 1
    rc = main(["search", "--accuracy", str(tmp / "acc.csv"), "--table", str(tmp / "dev.json"),
               "--budget-ms", "5"])
    # a CSV carries no space; the device table's built-in space (tiny-32) serves
    err = capsys.readouterr().err
    assert "--space" not in err and (rc == 0 or "smallest latency" in err)


def test_search_answers_the_feasible_budgets_and_reports_the_infeasible_one(tables, capsys):
    acc, dev, tmp = tables
    front = frontier(acc, dev)
    ok = [round(float(x), 3) for x in front.latency_ms[[len(front) // 2, -1]]]
    budgets = [0.001] + ok
    argv = ["search", "--accuracy", str(tmp / "acc.json"), "--table", str(tmp / "dev.json"),
            "--budget-ms", ",".join(map(str, budgets)), "--out", str(tmp / "arch.json")]
    d = run_json(capsys, *argv)
    first, *rest = d["results"]
    assert first["choices"] is None and "smallest latency" in first["infeasible"]
    assert "out" not in first and not (tmp / "arch_0.001ms.json").exists()
    for r, budget in zip(rest, ok):
        assert r["budget_ms"] == budget and r["latency_ms"] <= budget + 1e-9
        assert Architecture.from_dict(json.loads(open(r["out"]).read())).choices == \
            tuple(r["choices"])
    # text: the answered budgets in the table, the infeasible one as a line
    assert main(argv + ["--force"]) == 0
    assert "0.001: no answer" in capsys.readouterr().err
    # --strict: still prints every answer, then exit 2 with one line
    assert main(argv + ["--force", "--strict", "--json"]) == 2
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["results"]) == 3
    assert captured.err.count("\n") == 1 and "--strict" in captured.err


def test_search_in_the_median_and_beside_fp32_for_an_int8_table(tmp_path, capsys):
    """--statistic median checks budgets against the median line; an int8 table's answers
    carry its fp32 sibling's prediction of the same network, in the same statistic."""
    import warnings

    import hwnas

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hwnas.HwnasWarning)
        int8 = hwnas.load_device_table("tiny-32_onnxruntime_cpu_int8")
        fp32 = hwnas.load_device_table("tiny-32_onnxruntime_cpu_fp32")
    csv = str(Path(__file__).resolve().parents[1] / "examples" / "tiny-32_accuracy.csv")
    d = run_json(capsys, "search", "--accuracy", csv, "--table", "tiny-32_onnxruntime_cpu_int8",
                 "--budget-ms", "0.35,0.5", "--statistic", "median")
    for r in d["results"]:
        arch = hwnas.Architecture.load(r["notation"])
        assert r["statistic"] == "median"
        assert r["latency_ms"] == pytest.approx(int8.predict(arch, statistic="median").latency_ms)
        assert r["latency_ms"] <= r["budget_ms"]
        assert r["fp32_latency_ms"] == pytest.approx(fp32.predict(arch, statistic="median")
                                                     .latency_ms)
