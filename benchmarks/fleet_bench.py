"""Fleet profiling on Ray with 2 single-core workers on this machine,
against a local single-process run.

    python benchmarks/fleet_bench.py [--space tiny-32] [--repeats 2] [--quick]

Starts a real local Ray cluster: a head and one worker node, each started under
``taskset`` on its own core (the raylet's workers inherit the affinity: two single-core
devices), each carrying the resource ``hwnas-bench-dev`` and labelled core0 / core1. Each
repeat runs, in turn, a local ``hwnas profile`` (one process, as a user runs it) and a fleet
``hwnas profile --ray`` (both devices at once), each into fresh tables with the default
protocol. Reported per repeat and device:

* agreement: the share of blocks whose table figure (the floor) is within 5% of the local
  run of the same repeat, and, as the host's own yardstick, the same share between two
  local runs;
* overhead: the fleet device's wall time minus its worker's own measuring time (actor
  start, bundle staging, streaming and merging the rounds), per block, as a share of the
  worker's measuring time per block.

Nothing else may load the CPU meanwhile (both cores are measured on).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = "hwnas-bench-dev"
BIN = Path(sys.executable).parent


def ray_cmd(*args: str, core: int | None = None) -> None:
    cmd = [str(BIN / "ray"), *args]
    if core is not None:
        cmd = ["taskset", "-c", str(core)] + cmd
    subprocess.run(cmd, check=True, capture_output=True, timeout=180,
                   env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def start_cluster() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--num-cpus", "1", "--resources", json.dumps({RES: 1}),
              "--object-store-memory", str(200 * 2**20), "--disable-usage-stats"]
    ray_cmd("start", "--head", "--port", str(port), "--include-dashboard", "false",
            "--labels", "hwnas-device=core0", *common, core=0)
    ray_cmd("start", "--address", f"127.0.0.1:{port}", "--labels", "hwnas-device=core1",
            *common, core=1)
    return f"127.0.0.1:{port}"


def hwnas(*argv: str, cache: Path) -> dict:
    env = dict(os.environ, HWNAS_CACHE=str(cache), PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "hwnas", *argv, "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    d = json.loads(r.stdout)
    d["host_wall_s"] = time.monotonic() - t0
    return d


def figures(path: Path) -> dict[str, float]:
    d = json.loads(path.read_text())
    fig = {"floor": "floor_ms", "median": "median_ms"}[d["meta"]["protocol"].get("figure", "median")]
    return {k: float(e[fig]) for k, e in d["entries"].items() if e.get("status") == "ok"}


def within(a: dict[str, float], b: dict[str, float], tol: float = 0.05) -> tuple[float, float, int]:
    keys = sorted(set(a) & set(b))
    errs = sorted(abs(a[k] / b[k] - 1.0) for k in keys)
    return (sum(e <= tol for e in errs) / len(errs), errs[len(errs) // 2], len(errs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--space", default="tiny-32")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="short protocol (smoke run of this script)")
    ap.add_argument("--json", default="runs/bench_fleet.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-fleet-"))
    cache = tmp / "cache"
    common = ["profile", "--space", args.space, "--backend", "onnxruntime", "--threads", "1"] + \
        (["--quick"] if args.quick else [])
    # export the bundle once, outside every timed run
    hwnas(*common, "--quick", "--out", str(tmp / "warm.json"), cache=cache)
    address = start_cluster()
    rows = []
    try:
        prev_local = None
        for k in range(args.repeats):
            local = tmp / f"local{k}.json"
            lrep = hwnas(*common, "--out", str(local), cache=cache)
            frep = hwnas(*common, "--ray", address, "--resources", f"device={RES}",
                         "--out", str(tmp / f"fleet{k}"), cache=cache)
            lf = figures(local)
            row = {"repeat": k + 1, "local_wall_s": round(lrep["host_wall_s"], 1),
                   "fleet_host_wall_s": round(frep["host_wall_s"], 1), "devices": {}}
            if prev_local is not None:
                share, med, n = within(lf, figures(prev_local))
                row["local_vs_previous_local"] = {"within_5pct": share, "median_err": med, "n": n}
            for name, dev in frep["devices"].items():
                ff = figures(Path(dev["table"]))
                share, med, n = within(ff, lf)
                t = json.loads(Path(dev["table"]).read_text())
                items = len(t["entries"]) + len(t["meta"].get("networks", {})) + 1
                over = dev["wall_s"] - dev["worker_measure_s"]
                row["devices"][name] = {
                    "within_5pct_of_local": share, "median_err": med, "blocks": n,
                    "wall_s": dev["wall_s"], "worker_measure_s": dev["worker_measure_s"],
                    "overhead_per_item_ms": round(1000 * over / items, 2),
                    "measure_per_item_ms": round(1000 * dev["worker_measure_s"] / items, 2),
                    "overhead_share": round(over / dev["worker_measure_s"], 4),
                    "attempts": dev["attempts"]}
            rows.append(row)
            prev_local = local
            print(json.dumps(row), flush=True)
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=180)
    shares = [d["within_5pct_of_local"] for r in rows for d in r["devices"].values()]
    overs = [d["overhead_share"] for r in rows for d in r["devices"].values()]
    summary = {"space": args.space, "repeats": args.repeats, "quick": args.quick,
               "within_5pct_worst": min(shares), "within_5pct_typical": sorted(shares)[len(shares) // 2],
               "overhead_share_worst": max(overs),
               "overhead_share_typical": sorted(overs)[len(overs) // 2], "rows": rows}
    print(f"fleet tables vs the local run: {100 * summary['within_5pct_typical']:.0f}% of blocks "
          f"within 5% typical, {100 * summary['within_5pct_worst']:.0f}% worst; overhead "
          f"{100 * summary['overhead_share_typical']:.1f}% of the measuring time typical, "
          f"{100 * summary['overhead_share_worst']:.1f}% worst")
    out = ROOT / args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
