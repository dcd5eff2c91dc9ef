"""``examples/deploy.py``, the README's library section as a script, runs as written, and the
library calls it makes hold what they promise."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import has

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (has("torch") and has("onnx") and has("onnxruntime")),
                    reason="needs the torch extra and onnxruntime")
def test_deploy_example_runs_as_written(tmp_path):
    import onnxruntime as ort

    import hwnas

    out = tmp_path / "net.onnx"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "deploy.py"),
                        str(ROOT / "examples" / "tiny-32_accuracy.csv"), str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if " ms: " in ln]
    assert len(lines) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hwnas.HwnasWarning)
        dev = hwnas.load_device_table("tiny-32_onnxruntime_cpu_fp32")
    for line in lines:  # every printed prediction is the table's own, within its budget
        budget, rest = line.split(" ms: ", 1)
        arch = hwnas.Architecture.load(rest.split()[0])
        pred = dev.predict(arch).latency_ms
        assert f"predicted {pred:.4f} ms" in line
        assert pred <= float(budget) / (1 + dev.margin()[0]) + 1e-9
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert y.shape == (1, 10)


def test_frontier_best_with_margin_is_best_within_the_reduced_budget():
    from solver_tables import make_tables

    from hwnas.solver import frontier

    acc, dev = make_tables("tiny-32", 5)
    front = frontier(acc, dev)
    budget = float(front.latency_ms[len(front) // 2])
    assert front.best(budget, margin=0.05) == front.best(budget / 1.05)
    assert front.best(budget, margin=0.0) == front.best(budget)
    from hwnas.solver.problem import SolverError

    with pytest.raises(SolverError, match="margin"):
        front.best(budget, margin=1.5)


def test_predict_takes_the_architecture_alone_and_warns_for_another_machine(tmp_path):
    import json

    import hwnas

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dev = hwnas.load_device_table("tiny-32_onnxruntime_cpu_fp32")
    arch = hwnas.sample_architecture(hwnas.load_space("tiny-32"), 3)
    assert dev.predict(arch) == dev.predict(hwnas.load_space("tiny-32"), arch)
    # a table of this machine and runtime warns nothing; another runtime version warns
    d = json.loads(dev.save(tmp_path / "t.json").read_text())
    from hwnas_profilers.fingerprint import fingerprint

    d["meta"]["device"] = fingerprint()
    for version, warned in (("0.1.0", True),):
        d["meta"]["runtime_version"] = version
        (tmp_path / "t.json").write_text(json.dumps(d))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hwnas.load_device_table(tmp_path / "t.json")
        msgs = [str(w.message) for w in caught if issubclass(w.category, hwnas.HwnasWarning)]
        assert bool(msgs) == warned and (not msgs or "onnxruntime 0.1.0 ->" in msgs[0])
    if has("onnxruntime"):
        from importlib.metadata import version

        d["meta"]["runtime_version"] = version("onnxruntime")
        (tmp_path / "t.json").write_text(json.dumps(d))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hwnas.load_device_table(tmp_path / "t.json")
        assert not [w for w in caught if issubclass(w.category, hwnas.HwnasWarning)]


@pytest.mark.skipif(not (has("torch") and has("onnx") and has("onnxruntime")),
                    reason="needs the torch extra and onnxruntime")
def test_architecture_export_carries_the_supernets_weights(tmp_path):
    import onnxruntime as ort
    import torch

    from hwnas import Architecture, load_space
    from hwnas.train.checkpoint import Checkpoint, save_checkpoint
    from hwnas.train.supernet import Supernet, extract_subnet

    space = load_space("tiny-32")
    torch.manual_seed(1)
    net = Supernet(space).eval()
    ck = save_checkpoint(tmp_path / "sn.pt", Checkpoint(space, space, {"seed": 0}, {},
                                                       net.state_dict()))
    arch = Architecture.load("tiny-32:k3e6,skip,k3e3,k7e6,k5e3,skip")
    path = arch.export(tmp_path / "a.onnx", supernet=ck)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = extract_subnet(net, arch).eval()(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    assert np.max(np.abs(got - ref)) < 1e-4
    fresh = arch.export(tmp_path / "b.onnx")  # fresh weights: a different function
    other = ort.InferenceSession(str(fresh), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    assert np.max(np.abs(other - ref)) > 1e-3
