"""Figures of the main job on the embedded default, as a new user runs it.

    python benchmarks/main_job.py [--out DIR] [--extra ARGS]

Runs ``hwnas run --out DIR`` (the README's first set-up line, defaults) in a fresh folder and
times it; then the same command again (a rerun must reuse everything, under 1 minute);
then reads what the run wrote and reports:

* wall time of the first run and of the rerun (target: at most 600 s and under 60 s);
* dominance: every baseline network (uniform, shallow, 20 random) that is not faster than
  every chosen network is matched by a chosen network no slower when measured and no
  less accurate on the held-out test split (``hwnas.report.dominance``);
* how many emitted engines meet their budget when measured (target: at least 95%),
  with each engine's prediction error and the margin the run chose with.

Run it alone on the machine: the time is the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(out: Path, extra: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "hwnas", "run", "--out", str(out), *extra],
                       cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"hwnas run failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, p.stdout + p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="", help="run folder (default: a fresh temporary one)")
    ap.add_argument("--extra", default="", help="more hwnas run arguments, quoted")
    ap.add_argument("--json", default="runs/bench_main_job/main_job.json")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="hwnas-mainjob-")) / "run"
    extra = shlex.split(args.extra)
    first, log = run(out, extra)
    print(f"first run: {first:.0f} s", flush=True)
    again, log2 = run(out, extra)
    print(f"rerun: {again:.1f} s", flush=True)
    from hwnas.report import dominance
    from hwnas.run.folder import RunFolder

    folder = RunFolder.finished(out)[0]
    tag = folder.tag
    summary = json.loads(folder.summary.read_text())
    base = json.loads(folder.baselines.read_text())
    train = json.loads(folder.accuracy_table.read_text())["provenance"]
    dom = dominance(base)
    res = summary["results"]
    meets = [r["meets_budget"] for r in res]
    row = {"out": str(out), "first_run_s": round(first, 1), "rerun_s": round(again, 1),
           "train_seconds": train.get("seconds"), "tag": tag,
           "budget_margin": summary.get("budget_margin"), "data_split": summary.get("data_split"),
           "engines": [{k: r.get(k) for k in ("budget_ms", "predicted_ms", "measured_ms",
                                              "prediction_error", "meets_budget",
                                              "test_accuracy", "val_accuracy", "choices",
                                              "steps_down")}
                       for r in res],
           "engines_meeting_budget": f"{sum(bool(m) for m in meets)}/{len(meets)}",
           "dominance": dom}
    print(json.dumps(row, indent=1))
    js = ROOT / args.json
    js.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(js.read_text()) if js.is_file() else []
    js.write_text(json.dumps(rows + [row], indent=1) + "\n")
    (js.parent / f"log_{int(time.time())}.txt").write_text(log + "\n----- rerun -----\n" + log2)


if __name__ == "__main__":
    main()
