"""`import hwnas` wall time in fresh interpreters, for one or more checkouts (a change
must not make the import slower). Each checkout is imported ``--runs`` times, interleaved (A, B,
A, B, ...) so a slow phase of the host hits both alike; the report gives the median and
the worst run per checkout, and the heavy modules that must stay out of the import.

    python benchmarks/import_time.py [--runs 15] CHECKOUT [CHECKOUT ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CODE = ("import time, sys; t = time.perf_counter(); import hwnas; "
        "dt = time.perf_counter() - t; "
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'nncf', 'ray', "
        "'scipy', 'matplotlib', 'sklearn') if m in sys.modules); "
        "print(dt, ','.join(heavy))")


def once(checkout: str) -> tuple[float, str]:
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                       env={"PYTHONPATH": checkout, "PATH": "/usr/bin:/bin"}, cwd=checkout,
                       check=True)
    dt, heavy = r.stdout.split(" ", 1)
    return float(dt), heavy.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkouts", nargs="+")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    for c in args.checkouts:  # warm the file cache and the bytecode once
        once(c)
    times: dict[str, list[float]] = {c: [] for c in args.checkouts}
    heavy: dict[str, set[str]] = {c: set() for c in args.checkouts}
    for _ in range(args.runs):
        for c in args.checkouts:
            dt, h = once(c)
            times[c].append(dt)
            heavy[c].update(x for x in h.split(",") if x)
    out = {c: {"median_ms": round(1000 * statistics.median(v), 1),
               "worst_ms": round(1000 * max(v), 1), "best_ms": round(1000 * min(v), 1),
               "runs": len(v), "heavy_modules_imported": sorted(heavy[c])}
           for c, v in times.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
