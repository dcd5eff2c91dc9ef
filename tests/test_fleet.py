"""Fleet profiling on a real local Ray cluster: a head and a worker node
started here, each carrying the device resource, each one "device" with its own table."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import has

pytestmark = pytest.mark.skipif(not (has("ray") and has("onnxruntime") and has("torch")),
                                reason="needs ray, onnxruntime and torch (pip install -e '.[test]')")

RES = "hwnas-test-dev"
MEASURED = ("median_ms", "floor_ms", "min_ms", "p10_ms", "p90_ms", "p25_ms", "p75_ms", "n",
            "status", "stable", "span_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    ray_bin = Path(sys.executable).parent / "ray"
    subprocess.run([str(ray_bin), *args], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


@pytest.fixture(scope="module")
def cluster():
    """A head node and one worker node on this machine, one CPU and one device each."""
    port = _free_port()
    common = ["--num-cpus", "1", "--resources", json.dumps({RES: 1}),
              "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"]
    try:
        _ray("start", "--head", "--port", str(port), "--include-dashboard", "false",
             "--labels", "hwnas-device=board-a", *common)
        _ray("start", "--address", f"127.0.0.1:{port}", "--labels", "hwnas-device=board-b",
             *common)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"],
                       capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def bundle():
    from hwnas import load_space
    from hwnas.profiling import export_cached_bundle

    return export_cached_bundle(load_space("tiny-32"), 2)


def _measured(e: dict) -> dict:
    return {k: e.get(k) for k in MEASURED}


def test_fleet_one_table_per_device(cluster, tmp_path, run_cli):
    from hwnas.tables.device import load_device_table

    out = tmp_path / "fleet"
    rc, o, err = run_cli("profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
                         "--calibration-nets", "2", "--ray", cluster, "--resources",
                         f"device={RES}", "--out", out, "--json")
    assert rc == 0, err
    rep = json.loads(o)
    assert sorted(rep["tables"]) == ["board-a", "board-b"]
    nodes = set()
    for name in ("board-a", "board-b"):
        d = json.loads((out / f"{name}.json").read_text())
        assert d["meta"]["status"] == "complete"
        assert d["meta"]["fleet"]["device"] == name
        # the worker ran the device-side package only
        assert d["meta"]["fleet"]["worker_imported_torch"] is False
        nodes.add(d["meta"]["fleet"]["ray_node_id"])
        t = load_device_table(out / f"{name}.json")
        assert not t.missing(__import__("hwnas").load_space("tiny-32"))
        assert all(e["status"] == "ok" and e["floor_ms"] > 0 for e in d["entries"].values())
        assert rep["devices"][name]["attempts"] == 1
    assert len(nodes) == 2  # each table measured on its own node

    # a rerun without --resume refuses and touches nothing; with --resume measures nothing
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, _, err = run_cli("profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
                         "--calibration-nets", "2", "--ray", cluster, "--resources",
                         f"device={RES}", "--out", out)
    assert rc == 2 and "--resume" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    rc, o, err = run_cli("profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
                         "--calibration-nets", "2", "--ray", cluster, "--resources",
                         f"device={RES}", "--out", out, "--resume", "--json")
    assert rc == 0, err
    for name in ("board-a", "board-b"):
        old = json.loads(before[f"{name}.json"])
        new = json.loads((out / f"{name}.json").read_text())
        assert {k: _measured(e) for k, e in new["entries"].items()} == \
               {k: _measured(e) for k, e in old["entries"].items()}


def test_fleet_worker_killed_is_replaced(cluster, bundle, tmp_path):
    """SIGKILL one device's worker mid-run: a new worker on the same node resumes from the
    host's table; what was finished before the kill is kept as measured."""
    from hwnas_profilers import Protocol, Settings
    from hwnas_profilers.fleet import profile_fleet

    # long enough to kill in the middle, and spread out: no item ever counts as stable, so
    # each samples until it has spent item_cap_s; costly blocks get there first and the
    # table fills item by item over seconds (items that all settle in the same round filled
    # it at once, and a kill often landed after the worker's last round)
    proto = Protocol(min_span_s=0.0, max_span_s=0.0, item_cap_s=0.08, stable_rounds=10**9,
                     max_samples=10**6)
    # a trial is conclusive when the kill landed while the worker still measured; one that
    # landed after its last round (the table not yet finalised) needs no replacement and
    # is run again, at most three times
    for trial in range(3):
        out = tmp_path / f"fleet{trial}"
        seen: dict = {}

        def killer(out: Path = out, seen: dict = seen) -> None:
            t_end = time.monotonic() + 120
            f = out / "board-a.json"
            while time.monotonic() < t_end:
                try:
                    d = json.loads(f.read_text())
                except (OSError, ValueError):
                    time.sleep(0.01)
                    continue
                done = len(d["entries"]) + len(d["meta"].get("networks") or {}) + \
                    ("overhead" in d["meta"])
                if 1 <= len(d["entries"]) and done < 30 and d["meta"].get("status") != "complete":
                    os.kill(int(d["meta"]["fleet"]["worker_pid"]), signal.SIGKILL)
                    seen.update(entries={k: _measured(e) for k, e in d["entries"].items()},
                                pid=d["meta"]["fleet"]["worker_pid"])
                    return
                time.sleep(0.01)

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        rep = profile_fleet(bundle, "onnxruntime", out, Settings(), proto, address=cluster,
                            resource=RES, lost_after_s=60, heartbeat_s=1.0)
        th.join(5)
        a = rep["devices"]["board-a"]
        assert a["state"] == "done" and rep["devices"]["board-b"]["attempts"] == 1
        if seen and a["attempts"] == 2:
            break
    else:
        pytest.fail("in 3 trials no kill landed while the worker was measuring")
    assert seen["pid"] in a["worker_pids"] and seen["pid"] != a["worker_pids"][-1]
    final = json.loads((out / "board-a.json").read_text())
    assert final["meta"]["status"] == "complete"
    for k, e in seen["entries"].items():  # nothing finished was lost or measured again
        assert _measured(final["entries"][k]) == e


def test_fleet_bad_input(cluster, tmp_path, run_cli, monkeypatch):
    base = ["profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
            "--calibration-nets", "2"]
    # no node carries the resource
    rc, _, err = run_cli(*base, "--ray", cluster, "--resources", "device=no-such-board",
                         "--out", tmp_path / "a")
    assert rc == 2 and "no-such-board" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # an unreachable address is refused at once (ray.init alone retries for minutes)
    t = time.monotonic()
    rc, _, err = run_cli(*base, "--ray", f"127.0.0.1:{_free_port()}", "--out", tmp_path / "b")
    assert rc == 2 and "cannot reach the Ray cluster" in err and time.monotonic() - t < 30
    rc, _, err = run_cli(*base, "--ray", "not an address", "--out", tmp_path / "b")
    assert rc == 2 and "HOST:PORT" in err
    # --resources without --ray; a malformed resource; --out a file
    rc, _, err = run_cli(*base, "--resources", f"device={RES}", "--out", tmp_path / "c.json")
    assert rc == 2 and "--ray" in err
    rc, _, err = run_cli(*base, "--ray", cluster, "--resources", "device=a b", "--out", tmp_path / "c")
    assert rc == 2 and "--resources" in err
    (tmp_path / "file").write_text("x")
    rc, _, err = run_cli(*base, "--ray", cluster, "--resources", f"device={RES}",
                         "--out", tmp_path / "file")
    assert rc == 2 and (tmp_path / "file").read_text() == "x"
    # the runtime is missing on the device nodes: each device fails naming the extra
    rc, _, err = run_cli("profile", "--space", "tiny-32", "--backend", "tensorrt", "--quick",
                         "--calibration-nets", "2", "--ray", cluster, "--resources",
                         f"device={RES}", "--out", tmp_path / "trt")
    if not has("tensorrt"):
        assert rc == 2 and "board-a" in err and "board-b" in err and "hwnas[tensorrt]" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # Ray not installed here: one line naming the extra
    monkeypatch.setitem(sys.modules, "ray", None)
    rc, _, err = run_cli(*base, "--ray", cluster, "--out", tmp_path / "d")
    assert rc == 2 and "hwnas[ray]" in err and not (tmp_path / "d").exists()
