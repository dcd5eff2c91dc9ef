"""The main job (``hwnas run``) end to end on the embedded default, at smoke settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import has, schema_check

pytestmark = pytest.mark.skipif(not (has("torch") and has("onnxruntime") and has("sklearn")),
                                reason="needs the host extras (torch, onnxruntime, scikit-learn)")


@pytest.mark.heavy
def test_run_smoke_writes_manifests_and_resumes(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    # no step-down on a measured miss here (on a busy host one came and went with the
    # noise, and one that had landed on the fastest point left nothing to step down to):
    # the step-down below is forced, the same way in every run of this test
    import hwnas.engines.budget as hb

    monkeypatch.setattr(hb, "missed", lambda m, budget: False)
    out = tmp_path / "run"
    argv = ["run", "--out", out, "--epochs", "1", "--later-paths", "1", "--finetune-steps", "2",
            "--quick", "--json"]
    rc, stdout, err = run_cli(*argv)
    summary = json.loads(stdout)
    # exit 3 exactly when an engine is over its budget (the step-down is off here)
    missed = any(r["meets_budget"] is False for r in summary["results"])
    assert rc == (3 if missed else 0), err
    assert ("over its budget" in err) == missed
    assert 1 <= len(summary["results"]) <= 3  # three budgets spread over the frontier
    from hwnas.engines.manifest import EngineManifest
    from hwnas.run.results import RunSummary

    assert RunSummary.from_json(summary).to_json() == summary
    assert json.loads((out / "summary_onnxruntime_fp32.json").read_text()) == summary
    for name in ("frontier", "baselines"):
        schema_check(json.loads((out / f"{name}_onnxruntime_fp32.json").read_text()))
    front = json.loads((out / "frontier_onnxruntime_fp32.json").read_text())["points"]
    # the best is reachable (the solver's pick; a measured miss may have stepped it down)
    assert summary["results"][-1]["first_choices"] == front[-1]["choices"]
    for r in summary["results"]:
        man = json.loads(open(r["manifest"]).read())
        assert man["kind"] == "hwnas.engine_manifest"
        schema_check(man)
        assert EngineManifest.from_json(man).to_json() == man  # the typed value loses nothing
        assert "onnxruntime_fp32" in r["manifest"]
        assert man["latency"]["predicted_ms"] <= man["budget_ms"] + 1e-9
        assert man["latency"]["measured_ms"] > 0
        assert man["parity"]["max_abs_diff"] < 1e-4
        assert man["engine"]["file"] == "model.onnx"
        assert len(man["architecture"]["choices"]) == 6
        assert man["preprocessing"]["normalise"]["std"] > 0
    assert (out / "train" / "accuracy_table.json").is_file()
    # the report: four PNG figures and one offline HTML page referring to them
    report = Path(summary["report"])
    assert report.is_file() and report.parent.name == "report_onnxruntime_fp32"
    page = report.read_text()
    imgs = re.findall(r"<img class='fig' src='([^']+)'", page)
    assert len(imgs) == 4 and "http" not in "".join(re.findall(r"src='([^']+)'", page))
    for f in imgs:
        assert (report.parent / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    base = json.loads((out / "baselines_onnxruntime_fp32.json").read_text())
    kinds = [n["label"].split()[0] for n in base["networks"]]
    assert kinds.count("random") == 20 and kinds.count("uniform") == 6
    assert kinds.count("chosen") == len(summary["results"])
    assert all(n["measured_ms"] > 0 and 0 <= n["supernet_val_accuracy"] <= 1
               for n in base["networks"])
    assert all(0 <= r["predicted_accuracy"] <= 1.5 for r in summary["results"])
    assert summary["statistic"] == "floor"
    # the device table was refitted on this run's frontier before engines were chosen, and
    # every network the run measured is recorded in it, apart from those it was fitted on
    cal = summary["calibration"]
    assert cal["status"] == "recalibrated" and set(cal["groups"]) == {"random", "frontier"}
    assert cal["observed"]["engines"]["nets"] == len(summary["results"])
    dt = json.loads((out / "device_table_onnxruntime_fp32.json").read_text())
    assert dt["meta"]["recalibrations"][-1]["by"] == "hwnas run"
    assert dt["meta"]["observed"]["onnxruntime_fp32"]["groups"] == cal["observed"]
    assert "Prediction error by group" in page
    # a held-out test split (15% of digits) took no part in training or choosing
    split = summary["data_split"]
    assert split["test"] == round(1797 * 0.15) and split["val"] == round(1797 * 0.3)
    assert split["train"] == 1797 - split["test"] - split["val"]
    margin = summary["budget_margin"]["value"]
    assert 0.03 <= margin < 1
    for r in summary["results"]:
        assert 0 <= r["test_accuracy"] <= 1 and r["test_images"] == split["test"]
        # chosen within the budget less the margin for prediction error
        assert r["predicted_ms"] <= r["budget_ms"] / (1 + margin) + 1e-9
        assert r["meets_budget"] == (r["measured_ms"] <= r["budget_ms"])
    assert all(0 <= n["supernet_test_accuracy"] <= 1 for n in base["networks"])
    # the engine files were timed in the baselines' interleaved run, written to each manifest
    for r in summary["results"]:
        man = json.loads(open(r["manifest"]).read())
        timed = base["engines"][f"{r['budget_ms']:g}"]
        assert man["latency"]["measured_ms"] == timed["measured_ms"] == r["measured_ms"]
        assert len(timed["session_figures_ms"]) == 3 and "interleaved" in man["measured_with"]
    # a second run reuses the table, the device table and every engine (nothing rebuilt)
    table_before = (out / "train" / "accuracy_table.json").read_bytes()
    base_before = (out / "baselines_onnxruntime_fp32.json").read_bytes()
    manifests = {r["manifest"]: open(r["manifest"], "rb").read() for r in summary["results"]}
    rc, stdout, err = run_cli(*argv)
    assert rc == (3 if missed else 0), err
    assert (out / "train" / "accuracy_table.json").read_bytes() == table_before
    assert {k: open(k, "rb").read() for k in manifests} == manifests
    assert (out / "baselines_onnxruntime_fp32.json").read_bytes() == base_before  # reused
    assert json.loads(stdout)["calibration"]["status"] == "reused"  # nothing measured again
    assert Path(json.loads(stdout)["report"]).is_file()
    if shutil.which("chromium"):
        _renders_in_chromium(report)
    _step_down_and_reuse(run_cli, argv, out, summary, monkeypatch)
    _unreachable_budget_before_training(run_cli, argv, out, tmp_path)
    # the same folder with other training settings: refused before anything runs (its
    # validation images could be this run's test images), nothing on disk touched
    other = list(argv)
    other[other.index("--later-paths") + 1] = "2"
    rc, _, err = run_cli(*other)
    assert rc == 2 and "trained with other settings" in err and "Traceback" not in err
    assert (out / "train" / "accuracy_table.json").read_bytes() == table_before


def _step_down_and_reuse(run_cli, argv, out: Path, summary, monkeypatch) -> None:
    """An engine measured over its budget is replaced by a faster frontier point's, the
    step is recorded in its manifest, and a rerun reuses it without building or timing."""
    import hwnas.engines.budget as hb

    top = summary["results"][-1]
    real = hb.missed  # never a miss (set by the caller)

    def missed_once(m, budget):  # the top engine's measurement taken as a miss
        from hwnas.engines.manifest import EngineManifest

        return EngineManifest.of(m).choices == top["choices"] and budget == top["budget_ms"]

    import hwnas.train.validate as hv

    evaluated = []
    real_acc = hv.inherited_accuracies

    def counted(supernet, choices, *a, **k):
        evaluated.append(list(choices))
        return real_acc(supernet, choices, *a, **k)

    old_rows = json.loads((out / "baselines_onnxruntime_fp32.json").read_text())["networks"]
    monkeypatch.setattr(hb, "missed", missed_once)
    monkeypatch.setattr(hv, "inherited_accuracies", counted)
    rc, stdout, err = run_cli(*argv)
    assert rc == _status(stdout), err
    after = json.loads(stdout)["results"][-1]
    steps = sum(r["steps_down"] for r in json.loads(stdout)["results"]) - \
        sum(r["steps_down"] for r in summary["results"])
    monkeypatch.setattr(hb, "missed", real)
    monkeypatch.setattr(hv, "inherited_accuracies", real_acc)
    # the baselines' accuracies came from the previous file of the same supernet: only the
    # networks it lacked (at most one per step down; none when a step lands on a network
    # the run already has) were evaluated, and the others kept their figures
    known = [n["choices"] for n in old_rows]
    assert all(ch not in known for ch in evaluated), evaluated
    assert len(evaluated) <= steps  # this run's steps down, over every budget
    rows = json.loads((out / "baselines_onnxruntime_fp32.json").read_text())["networks"]
    acc_of = {tuple(n["choices"]): (n["supernet_val_accuracy"], n["supernet_test_accuracy"])
              for n in old_rows}
    assert all(acc_of[tuple(n["choices"])] == (n["supernet_val_accuracy"],
                                               n["supernet_test_accuracy"])
               for n in rows if tuple(n["choices"]) in acc_of)
    assert after["first_choices"] == top["first_choices"]
    assert (top["steps_down"], after["steps_down"]) == (0, 1)
    assert after["predicted_ms"] < top["predicted_ms"]
    man = json.loads(open(after["manifest"]).read())
    schema_check(man)
    assert list(man["architecture"]["choices"]) == after["choices"] != top["choices"]
    step = man["step_down"]
    assert step["budget_ms"] == top["budget_ms"] and len(step["tried"]) == after["steps_down"]
    assert step["tried"][top["steps_down"]]["choices"] == top["choices"]
    # the engine was timed with the baselines again; the chosen rows are the new networks
    base = json.loads((out / "baselines_onnxruntime_fp32.json").read_text())
    assert base["engines"][f"{top['budget_ms']:g}"]["measured_ms"] == after["measured_ms"]
    assert [n["choices"] for n in base["networks"] if n["kind"] == "chosen"][-1] == \
        after["choices"]
    arch = json.loads((Path(after["manifest"]).parent / "arch.json").read_text())
    assert arch["choices"] == after["choices"]
    # a rerun reuses the stepped-down engine and its measurement: nothing rebuilt or timed
    files = {p: p.read_bytes() for p in [Path(after["manifest"]),
                                        out / "baselines_onnxruntime_fp32.json"]}
    rc, stdout, err = run_cli(*argv)
    assert rc == _status(stdout), err
    assert {p: p.read_bytes() for p in files} == files
    again = json.loads(stdout)["results"][-1]
    assert (again["choices"], again["steps_down"]) == (after["choices"], after["steps_down"])


def _status(stdout: str) -> int:
    """The exit status a run's summary calls for: 3 when an engine is still over its budget
    (a real miss on a loaded host; the forced ones are stepped down), else 0."""
    rows = json.loads(stdout)["results"]
    return 3 if any(r["meets_budget"] is False or r.get("parity_ok") is False
                    for r in rows) else 0


def _unreachable_budget_before_training(run_cli, argv, out: Path, tmp_path: Path) -> None:
    """A budget below this machine's fastest network (with the margin) is refused once the
    device table exists and before any training; the message names the fastest."""
    from hwnas.spaces import load_space
    from hwnas.tables.device import load_device_table

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    table = out / "device_table_onnxruntime_fp32.json"
    shutil.copy(table, fresh / table.name)
    const, costs = load_device_table(table).layer_costs(load_space("tiny-32"))
    fastest = const + sum(float(c.min()) for c in costs)
    other = [str(a) for a in argv]
    other[other.index("--out") + 1] = str(fresh)
    rc, _, err = run_cli(*other, "--budget-ms", f"{fastest * 0.99:.6f}")
    assert rc == 2 and "fastest" in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not (fresh / "train").exists()
    assert (fresh / table.name).read_bytes() == table.read_bytes()  # kept, untouched


def _renders_in_chromium(report: Path) -> None:
    """Headless Chromium loads the page offline; its own script counts decoded figures."""
    p = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r'data-figures="(\d+)/(\d+)"', p.stdout)
    assert m, p.stderr[-2000:]
    assert m.group(1) == m.group(2) == "4"


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed "
                    "(.ci/run installs it)")
def test_report_renders_every_figure_in_headless_chromium(tmp_path):
    """write_report on a minimal finished run folder, opened by a real browser."""
    from hwnas.report import write_report

    out = _minimal_run(tmp_path)
    _renders_in_chromium(write_report(_folder(out)))


def _folder(out: Path):
    from hwnas.run.folder import RunFolder

    return RunFolder(out, "onnxruntime", "fp32", "onnxruntime")


def _minimal_run(tmp_path: Path) -> Path:
    """A run folder as hwnas run leaves it, from shipped and synthetic tables (no training)."""
    from hwnas.arch import sample_architecture
    from hwnas.spaces import load_space
    from hwnas.tables.accuracy import AccuracyTable
    from hwnas.tables.device import load_device_table

    sp = load_space("tiny-32")
    out = tmp_path / "run"
    (out / "train").mkdir(parents=True)
    rows = [{c: 0.9 + 0.01 * j for j, c in enumerate(layer.choices)} for layer in sp.layers]
    acc = AccuracyTable.from_rows(sp, rows, {"source": "test"})
    acc.save(out / "train" / "accuracy_table.json")
    dev = load_device_table("tiny-32_onnxruntime_cpu_fp32")
    dev.save(out / "device_table_onnxruntime_fp32.json")
    archs = [sample_architecture(sp, s) for s in range(3)]
    front = sorted(({"latency_ms": dev.predict(sp, a).latency_ms, "score": 5.5 + 0.01 * i,
                     "choices": list(a.choices)} for i, a in enumerate(archs)),
                   key=lambda p: p["latency_ms"])
    (out / "frontier_onnxruntime_fp32.json").write_text(json.dumps(front))
    results = [{"budget_ms": p["latency_ms"], "choices": p["choices"],
                "predicted_ms": p["latency_ms"], "measured_ms": p["latency_ms"] * 1.03,
                "measured_spread_ms": 0.01, "prediction_error": -0.03, "val_accuracy": 0.95,
                "engine": "model.onnx", "manifest": str(out / "none.json")} for p in front]
    (out / "summary_onnxruntime_fp32.json").write_text(json.dumps({
        "space": sp.name, "space_id": sp.id, "data": "digits", "backend": "onnxruntime",
        "precision": "fp32", "results": results,
        "device_table": str(out / "device_table_onnxruntime_fp32.json")}))
    return out


def test_report_of_a_folder_without_a_run_exit_2(run_cli, tmp_path):
    rc, _, err = run_cli("report", tmp_path)
    assert rc == 2 and "hwnas run" in err and len(err.strip().splitlines()) == 1


def test_report_without_browser_still_writes_figures(tmp_path):
    from hwnas.report import write_report

    page = write_report(_folder(_minimal_run(tmp_path)))
    assert len(list(page.parent.glob("*.png"))) == 4


def test_run_bad_input_exit_2(run_cli, tmp_path):
    rc, _, err = run_cli("run", "--out", tmp_path / "r", "--budget-ms", "fast")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    rc, _, err = run_cli("run", "--out", tmp_path / "r", "--space", "no-such-space")
    assert rc == 2 and "unknown space" in err
    # caught before any training: nothing is written
    for argv, needle in [(("--backend", "onnx"), "unknown engine backend"),
                         (("--backend", "tensorrt"), "tensorrt"),
                         (("--budget-ms", "inf"), "finite"),
                         (("--budget-margin", "150"), "--budget-margin"),
                         (("--budget-margin", "some"), "--budget-margin"),
                         (("--data", str(tmp_path / "none.npz")), "does not exist")]:
        rc, _, err = run_cli("run", "--out", tmp_path / "r2", *argv)
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r2").exists()


def test_dominance_uses_the_held_out_split_when_every_network_has_it():
    from hwnas.report import dominance

    def net(label, kind, ms, val, test):
        return {"label": label, "kind": kind, "measured_ms": ms,
                "supernet_val_accuracy": val, "supernet_test_accuracy": test}

    nets = [net("chosen 1 ms", "chosen", 1.0, 0.90, 0.95),
            net("random 0", "baseline", 1.2, 0.95, 0.93),   # better on val, worse on test
            net("random 1", "baseline", 0.5, 0.99, 0.99)]   # faster than every chosen one
    d = dominance({"networks": nets})
    assert d["accuracy"] == "supernet_test_accuracy"
    assert d["dominated"] == 1 and d["not_dominated"] == [] and d["comparable"] == 1
    assert d["faster_than_every_chosen"] == ["random 1"]
    nets[1]["supernet_test_accuracy"] = None  # a run without a test split: validation
    d = dominance({"networks": nets})
    assert d["accuracy"] == "supernet_val_accuracy" and d["not_dominated"] == ["random 0"]


def test_run_statistic_is_the_tables_line_and_a_folder_keeps_one(tmp_path):
    """--statistic median makes the run choose and measure in the table's median line; a
    folder whose earlier run was in another statistic is refused, one line."""
    import warnings

    from hwnas.errors import HwnasWarning, UserError
    from hwnas.pipeline import RunConfig, _in_statistic
    from hwnas.run.folder import RunFolder
    from hwnas.tables.device import load_device_table

    with pytest.raises(UserError, match="floor, median or p90"):
        RunConfig(statistic="p99")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwnasWarning)
        dev = load_device_table("tiny-32_onnxruntime_cpu_fp32")
    run = RunFolder(tmp_path, "onnxruntime", "fp32", "onnxruntime")
    view = _in_statistic(RunConfig(statistic="median"), dev, run)
    assert view.figure == "median" and view.calibration.scale == dev.line("median")[0]
    assert _in_statistic(RunConfig(), dev, run) is dev
    run.summary.write_text(json.dumps({"space": "tiny-32", "space_id": dev.space_id,
                                       "data": "digits", "statistic": "floor", "results": []}))
    with pytest.raises(UserError, match="in the floor; this one asks for the median"):
        _in_statistic(RunConfig(statistic="median"), dev, run)
    assert _in_statistic(RunConfig(statistic="floor"), dev, run) is dev


def test_an_int8_run_prints_each_engine_beside_fp32(tmp_path, capsys):
    """An int8 run's engines get the fp32 prediction of the same network beside theirs (the
    shipped fp32 table when the folder has none), said plainly when int8 is slower."""
    import warnings

    from hwnas.arch import Architecture
    from hwnas.cli.run import _beside_fp32
    from hwnas.errors import HwnasWarning
    from hwnas.run.results import RunResult, RunSummary
    from hwnas.tables.device import load_device_table

    choices = ["k3e6", "skip", "k3e3", "k7e6", "k5e3", "skip"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwnasWarning)
        int8 = load_device_table("tiny-32_onnxruntime_cpu_int8")
        fp32 = load_device_table("tiny-32_onnxruntime_cpu_fp32")
    arch = Architecture.load("tiny-32:" + ",".join(choices))
    row = RunResult(budget_ms=1.0, choices=choices, predicted_ms=int8.predict(arch).latency_ms)
    s = RunSummary(space="tiny-32", space_id=arch.space_id, data="digits",
                   backend="onnxruntime", precision="int8", results=[row], statistic="floor")
    _beside_fp32(s, str(tmp_path))
    out = capsys.readouterr().out
    want = fp32.predict(arch).latency_ms
    assert "the shipped table" in out and f"vs fp32 {want:.3f} ms" in out
    assert ("SLOWER" in out) == (row.predicted_ms > 1.02 * want)
    _beside_fp32(RunSummary(**{**s.__dict__, "precision": "fp32"}), str(tmp_path))
    assert capsys.readouterr().out == ""  # an fp32 run has nothing to compare with
