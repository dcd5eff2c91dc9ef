"""hwnas evolve: genetic search with supernet fine-tuning and a hierarchical proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, has

pytestmark = pytest.mark.skipif(not has("torch"), reason="needs torch")

TABLE = "tiny-32_onnxruntime_cpu_fp32"
SMALL = ["--population", "6", "--generations", "2", "--parents", "2", "--finetune-steps", "3",
         "--levels", "0.5,1"]


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    from hwnas.cli import main

    out = tmp_path_factory.mktemp("sn")
    rc = main(["train", "--space", "tiny-32", "--data", "digits", "--out", str(out),
               "--proxy", "c0.25,r8,s0.15,e1", "--epochs", "1", "--finetune-steps", "0",
               "--later-paths", "1", "--batch-size", "32", "--json"])
    assert rc == 0
    return out / "supernet.pt"


def _budget(fraction: float) -> float:
    from hwnas import load_space
    from hwnas.tables import load_device_table

    sp = load_space("tiny-32")
    const, costs = load_device_table(TABLE).layer_costs(sp)
    lo = const + sum(float(c.min()) for c in costs)
    hi = const + sum(float(c[c < float("inf")].max()) for c in costs)
    return round(lo + fraction * (hi - lo), 4)


def test_evolve_meets_the_budget_and_writes_its_history(supernet, tmp_path, run_cli):
    from hwnas.train.checkpoint import load_checkpoint

    b = _budget(0.3)
    rc, out, err = run_cli("evolve", "--supernet", supernet, "--table", TABLE, "--budget-ms",
                           str(b), "--out", tmp_path / "ev", *SMALL, "--json")
    assert rc == 0, err
    r = json.loads(out)["results"][0]
    assert r["predicted_ms"] <= b and len(r["best"]) == 6
    folder = Path(r["folder"])
    st = json.loads((folder / "evolve.json").read_text())
    assert st["done"] and [h["generation"] for h in st["history"]] == [0, 1, 2]
    # every individual of every generation meets the budget (repair, not rejection)
    from hwnas import load_space
    from hwnas.arch import Architecture
    from hwnas.tables import load_device_table

    sp, dev = load_space("tiny-32"), load_device_table(TABLE)
    for h in st["history"]:
        for ch in h["population"]:
            assert dev.predict(sp, Architecture.of(sp, ch)).latency_ms <= b + 1e-9
    # the hierarchical proxy scored fewer candidates on the full set than on the half
    levels = st["costs"]["per_level"]
    assert all(lv["scored"] >= nxt["scored"] for lv, nxt in zip(levels[::2], levels[1::2]))
    assert any(lv["scored"] > nxt["scored"] for lv, nxt in zip(levels[::2], levels[1::2]))
    assert st["costs"]["train_images"] == 2 * 3 * 32
    ck = load_checkpoint(folder / "supernet_finetuned.pt")  # a loadable checkpoint
    assert ck.progress["evolve_generation"] == 2
    assert json.loads((folder / "best_arch.json").read_text())["choices"] == st["best"]
    # a rerun reuses the finished search; other settings in the same folder are refused
    rc, out2, err = run_cli("evolve", "--supernet", supernet, "--table", TABLE, "--budget-ms",
                            str(b), "--out", tmp_path / "ev", *SMALL, "--json")
    assert rc == 0 and json.loads(out2)["results"][0]["best"] == r["best"]
    rc, _, err = run_cli("evolve", "--supernet", supernet, "--table", TABLE, "--budget-ms",
                         str(b), "--out", tmp_path / "ev", *SMALL[:-2], "--levels", "1")
    assert rc == 2 and "other settings" in err


def _evolve_proc(supernet: Path, out: Path, budget: float) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "hwnas", "evolve", "--supernet", str(supernet),
                             "--table", TABLE, "--budget-ms", str(budget), "--out", str(out),
                             "--population", "6", "--generations", "4", "--parents", "2",
                             "--finetune-steps", "20", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


@pytest.mark.slow
def test_evolve_killed_resumes_to_the_same_result(supernet, tmp_path):
    """kill -9 after a finished generation, run again: the same search as an uninterrupted
    one (every generation's state and weights are on disk before the next begins)."""
    b = _budget(0.5)
    ref = _evolve_proc(supernet, tmp_path / "ref", b)
    ref_out, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err
    p = _evolve_proc(supernet, tmp_path / "cut", b)
    state = tmp_path / "cut" / f"budget_{b:g}ms" / "evolve.json"
    killed = False
    t_end = time.monotonic() + 600
    while p.poll() is None and time.monotonic() < t_end:
        try:
            st = json.loads(state.read_text())
        except (OSError, ValueError):
            time.sleep(0.02)
            continue
        if 1 <= st["generation"] < 4 and not st["done"]:
            p.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    p.wait(timeout=60)
    assert killed, "the search finished before it could be interrupted"
    again = _evolve_proc(supernet, tmp_path / "cut", b)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    a = json.loads((tmp_path / "ref" / f"budget_{b:g}ms" / "evolve.json").read_text())
    c = json.loads(state.read_text())
    assert [h["scores"] for h in c["history"]] == [h["scores"] for h in a["history"]]
    assert c["best"] == a["best"]


def test_evolve_bad_input(supernet, tmp_path, run_cli):
    base = ["evolve", "--supernet", supernet, "--table", TABLE, "--out", tmp_path / "x"]
    rc, _, err = run_cli(*base, "--budget-ms", "0.01")
    assert rc == 2 and "fastest one is predicted at" in err and not (tmp_path / "x").exists()
    for flags, needle in ((["--population", "0"], "--population"),
                          (["--generations", "0"], "--generations"),
                          (["--levels", "0.5"], "--levels"),
                          (["--budget-ms", "fast"], "--budget-ms")):
        argv = base + (["--budget-ms", "1"] if "--budget-ms" not in flags else []) + flags
        rc, _, err = run_cli(*argv)
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    # a device table of another space
    rc, _, err = run_cli("evolve", "--supernet", supernet, "--table",
                         "proxyless-mobile_onnxruntime_cpu_fp32", "--budget-ms", "5",
                         "--out", tmp_path / "y")
    assert rc == 2 and "space" in err and "Traceback" not in err
