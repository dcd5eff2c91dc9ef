"""The hostile-input corpus (``tests/corpus.py`` and ``tests/corpus_code.py``), every case
as its own ``hwnas`` (or ``hwnas-profilers``) process, with its exit status, whether it
printed a traceback, its error lines, whether it hung, whether a payload ran (a
``CANARY`` file appeared), which files outside the command's output changed, appeared or
went, its peak resident memory (``wait4``'s ``ru_maxrss``) and its wall time.

    python benchmarks/fault_corpus.py [--code DIR] [--workers 2] [--only TEXT]
                                      [--per-category N] [--json out.json]

``--code`` runs another checkout's ``hwnas`` (the same corpus against older code gives the
"before" figure). Each process is capped at ``--mem-gb`` of address space and
``--timeout`` seconds (a hang), so an input that would expand until the kernel kills it
shows as killed instead of taking the host down; a case over ``--slow`` seconds is
counted as slow.
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


def _state(d: Path) -> dict[str, str]:
    """Every entry under ``d`` (links not followed): a file's sha256, else its kind."""
    import hashlib

    out: dict[str, str] = {}
    stack = [d] if d.is_dir() else []
    while stack:
        for p in stack.pop().iterdir():
            rel = str(p.relative_to(d))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
                stack.append(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _outside(argv: list[str], d: Path, before: dict[str, str], after: dict[str, str]
             ) -> list[str]:
    """Entries changed, made or removed in the case folder, outside the ``--out`` path."""
    outs = [str(Path(a).relative_to(d)) for f, a in zip(argv, argv[1:])
            if f == "--out" and Path(a).is_relative_to(d)]
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(k for k in moved if not any(k == o or k.startswith(o + "/") for o in outs)
                  and not k.endswith(".tmp"))


def run_case(case, code: Path, mem_gb: float, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="hwnas-corpus-") as tmp:
        d = Path(tmp) / "case"
        argv = case.materialise(d)
        env = dict(os.environ, PYTHONPATH=str(code), HWNAS_CACHE=str(Path(tmp) / "cache"),
                   OMP_NUM_THREADS="1")
        env.update(case.environment(d))
        before = _state(d)
        limit = int(mem_gb * 2**30)

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        module = "hwnas_profilers" if case.tool == "hwnas-profilers" else "hwnas"
        t0 = time.perf_counter()
        with open(Path(tmp) / "stderr", "wb") as errf:
            p = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=code, env=env,
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
        wall = time.perf_counter() - t0
        err = (Path(tmp) / "stderr").read_text("utf-8", "replace")
        canary = any(Path(tmp).rglob("CANARY"))
        outside = _outside(argv, d, before, _state(d))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return {"id": case.id, "category": case.category, "rc": rc,
            "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "traceback": "Traceback" in err, "memory_error": "MemoryError" in err,
            "error_lines": sum(": error:" in ln for ln in lines), "lines": len(lines),
            "longest_line": max((len(ln) for ln in lines), default=0),
            "hang": fired.is_set(), "canary": canary, "outside_changed": outside[:10],
            "wall_s": round(wall, 2), "last": lines[-1][:300] if lines else ""}


def _ok(r: dict) -> bool:
    return (r["rc"] == 2 and not r["traceback"] and r["error_lines"] == 1
            and r["longest_line"] <= 600 and not r["canary"] and not r["outside_changed"]
            and not r["hang"])


def _table(rows: list[dict], slow: float) -> dict[str, Counter]:
    by: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        c = by[r["category"]]
        c["cases"] += 1
        c["ok"] += _ok(r)
        c["traceback"] += r["traceback"]
        c["hang"] += r["hang"]
        c["killed"] += r["rc"] is not None and r["rc"] < 0 and not r["hang"]
        c["canary"] += r["canary"]
        c["outside"] += bool(r["outside_changed"])
        c["slow"] += r["wall_s"] > slow
        c["peak_mb"] = max(c["peak_mb"], int(r["peak_mb"]))
    cols = ("cases", "ok", "traceback", "hang", "killed", "canary", "outside", "slow", "peak_mb")
    print(f"{'category':16s} " + " ".join(f"{c:>9s}" for c in cols))
    for cat, c in by.items():
        print(f"{cat:16s} " + " ".join(f"{c[k]:9d}" for k in cols))
    tot = Counter()
    for c in by.values():
        for k in cols[:-1]:
            tot[k] += c[k]
    print(f"{'all':16s} " + " ".join(f"{tot[k]:9d}" for k in cols[:-1])
          + f" {max(int(r['peak_mb']) for r in rows):9d}")
    return by


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--code", default=str(ROOT), help="checkout whose hwnas to run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mem-gb", type=float, default=6.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before a hang")
    ap.add_argument("--slow", type=float, default=10.0, help="seconds counted as slow")
    ap.add_argument("--only", default="", help="substring of case ids to run")
    ap.add_argument("--per-category", type=int, default=0, metavar="N",
                    help="only the first N cases of each category (a quick sample)")
    ap.add_argument("--json", default="runs/bench_fault_corpus.json")
    args = ap.parse_args()
    todo = [c for c in cases() if args.only in c.id]
    if args.per_category:
        seen: Counter = Counter()
        todo = [c for c in todo if (seen.update([c.category]) or seen[c.category])
                <= args.per_category]
    code = Path(args.code).resolve()

    def one(c):
        return run_case(c, code, args.mem_gb, args.timeout)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        rows = list(ex.map(one, todo))
    print(f"{len(rows)} cases in {time.perf_counter() - t0:.0f} s, code {code}")
    top = max(rows, key=lambda r: r["peak_mb"])
    print(f"peak resident memory per process: max {top['peak_mb']:.0f} MB ({top['id']}), "
          f"median {sorted(r['peak_mb'] for r in rows)[len(rows) // 2]:.0f} MB; over 500 MB: "
          f"{sum(r['peak_mb'] > 500 for r in rows)}")
    by = _table(rows, args.slow)
    for r in [r for r in rows if not _ok(r)][:40]:
        flags = [k for k in ("traceback", "hang", "canary") if r[k]]
        if r["outside_changed"]:
            flags.append(f"outside changed {r['outside_changed'][:3]}")
        print(f"  {r['id']}: exit {r['rc']} {' '.join(flags)}: {r['last'][:160]}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"code": str(code), "rows": rows,
                                           "by_category": {k: dict(v) for k, v in by.items()}},
                                          indent=1))


if __name__ == "__main__":
    main()
