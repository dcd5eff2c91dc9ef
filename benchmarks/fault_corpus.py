"""Issue 14 figures: every case of the hostile-input corpus (``tests/corpus.py``) as its own
``hwnas`` process, with its exit status, whether it printed a traceback, its error lines,
its peak resident memory (``wait4``'s ``ru_maxrss``) and its wall time.

    python benchmarks/fault_corpus.py [--code DIR] [--workers 2] [--json out.json]

``--code`` runs another checkout's ``hwnas`` (the same corpus against older code gives the
"before" figure). Each process is capped at ``--mem-gb`` of address space and
``--timeout`` seconds, so an input that would expand until the kernel kills it (the issue
saw 4 GB and exit 137) shows as killed instead of taking the host down.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from corpus import cases  # noqa: E402


def run_case(case, code: Path, mem_gb: float, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="hwnas-corpus-") as tmp:
        d = Path(tmp) / "case"
        argv = case.materialise(d)
        env = dict(os.environ, PYTHONPATH=str(code), HWNAS_CACHE=str(Path(tmp) / "cache"),
                   OMP_NUM_THREADS="1")
        limit = int(mem_gb * 2**30)

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        t0 = time.perf_counter()
        with open(Path(tmp) / "stderr", "wb") as errf:
            p = subprocess.Popen([sys.executable, "-m", "hwnas", *argv], cwd=code, env=env,
                                 stdout=subprocess.DEVNULL, stderr=errf, preexec_fn=cap)
            fired = threading.Event()

            def stop() -> None:
                fired.set()
                p.kill()

            timer = threading.Timer(timeout, stop)
            timer.start()
            _, status, usage = os.wait4(p.pid, 0)  # this child's own peak resident memory
            timer.cancel()
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc
        killed_by_us = fired.is_set()
        wall = time.perf_counter() - t0
        err = (Path(tmp) / "stderr").read_text("utf-8", "replace")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return {"id": case.id, "category": case.category, "rc": rc,
            "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "traceback": "Traceback" in err, "memory_error": "MemoryError" in err,
            "error_lines": sum(": error:" in ln for ln in lines), "lines": len(lines),
            "longest_line": max((len(ln) for ln in lines), default=0),
            "timeout": killed_by_us, "wall_s": round(wall, 2), "last": lines[-1][:300] if lines else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--code", default=str(ROOT), help="checkout whose hwnas to run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mem-gb", type=float, default=6.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--only", default="", help="substring of case ids to run")
    ap.add_argument("--json", default="runs/bench_fault_corpus.json")
    args = ap.parse_args()
    todo = [c for c in cases() if args.only in c.id]
    code = Path(args.code).resolve()

    def one(c):
        return run_case(c, code, args.mem_gb, args.timeout)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        rows = list(ex.map(one, todo))
    ok = [r for r in rows if r["rc"] == 2 and not r["traceback"] and r["error_lines"] == 1
          and r["longest_line"] <= 600]
    by = defaultdict(Counter)
    for r in rows:
        cat = r["category"]
        by[cat]["cases"] += 1
        by[cat]["ok"] += r in ok
        by[cat]["traceback"] += r["traceback"]
        by[cat]["killed"] += (r["rc"] is not None and r["rc"] < 0) or r["timeout"]
        by[cat]["other_exit"] += r["rc"] not in (2,) and not r["traceback"] and not (
            (r["rc"] is not None and r["rc"] < 0) or r["timeout"])
    print(f"{len(rows)} cases in {time.perf_counter() - t0:.0f} s, code {code}")
    top = max(rows, key=lambda r: r["peak_mb"])
    print(f"peak resident memory: max {top['peak_mb']:.0f} MB ({top['id']}), median "
          f"{sorted(r['peak_mb'] for r in rows)[len(rows) // 2]:.0f} MB; over 500 MB: "
          f"{sum(r['peak_mb'] > 500 for r in rows)}")
    print(f"{'category':16s} {'cases':>6s} {'ok':>5s} {'traceback':>10s} {'killed':>7s} {'other':>6s}")
    for cat, c in by.items():
        print(f"{cat:16s} {c['cases']:6d} {c['ok']:5d} {c['traceback']:10d} {c['killed']:7d} "
              f"{c['other_exit']:6d}")
    bad = [r for r in rows if r not in ok]
    for r in bad[:40]:
        print(f"  {r['id']}: exit {r['rc']}{' traceback' if r['traceback'] else ''}: {r['last'][:160]}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"code": str(code), "rows": rows,
                                           "by_category": {k: dict(v) for k, v in by.items()}},
                                          indent=1))


if __name__ == "__main__":
    main()
