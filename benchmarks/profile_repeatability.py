"""Repeatability and cost: two independent profiling runs of a whole space, optionally far
apart in time (the target: two profiling runs at least 30 minutes apart agree).

Each run is a fresh ``profile_bundle`` into its own table (bundle export excluded from the
cost, reported separately). Prints the wall time of each run and the share of blocks whose
figures (the table's statistic: the floor since protocol v2) agree within 5% (target >=
95%). ``--gap-min 30`` sleeps between the runs; ``--compare A.json B.json`` compares two
existing tables instead (e.g. one profiled now and one 30 minutes later).

    python benchmarks/profile_repeatability.py [--space proxyless-mobile] [--backend onnxruntime]
        [--gap-min 0] [--compare A.json B.json] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def compare(a: dict, b: dict) -> dict:
    from hwnas_profilers.protocol import FIGURES, table_figure

    fa, fb = FIGURES[table_figure(a["meta"])], FIGURES[table_figure(b["meta"])]
    keys = sorted(k for k in a["entries"] if k in b["entries"]
                  and a["entries"][k].get("status") == b["entries"][k].get("status") == "ok")
    m1 = np.array([a["entries"][k][fa] for k in keys])
    m2 = np.array([b["entries"][k][fb] for k in keys])
    rel = np.abs(m1 - m2) / ((m1 + m2) / 2)
    big = [k for k, x, y in zip(keys, m1, m2) if max(x, y) >= 0.05]  # >= 50 us
    relb = np.array([r for k, r in zip(keys, rel) if k in big])
    return {"figure": [fa, fb], "blocks": len(keys), "dates": [a["meta"].get("date"),
                                                                b["meta"].get("date")],
            "within_5pct": float(np.mean(rel <= 0.05)), "within_10pct": float(np.mean(rel <= 0.10)),
            "median_abs_diff_pct": float(100 * np.median(rel)), "max_abs_diff_pct": float(100 * rel.max()),
            "worst_block": keys[int(rel.argmax())],
            "blocks_over_50us_within_5pct": float(np.mean(relb <= 0.05)) if len(relb) else None}


def report(c: dict) -> str:
    return (f"{c['blocks']} blocks ({c['figure'][0]}), {c['dates'][0]} vs {c['dates'][1]}: within "
            f"5% {100 * c['within_5pct']:.1f}%, within 10% {100 * c['within_10pct']:.1f}%, "
            f"median |diff| {c['median_abs_diff_pct']:.2f}%, max {c['max_abs_diff_pct']:.1f}% "
            f"({c['worst_block']}); blocks >= 50 us within 5%: "
            f"{100 * (c['blocks_over_50us_within_5pct'] or 0):.1f}%")


def main() -> None:
    from profile_fidelity import add_table_args

    ap = argparse.ArgumentParser()
    add_table_args(ap)
    ap.add_argument("--gap-min", type=float, default=0.0)
    ap.add_argument("--compare", nargs=2, metavar="TABLE")
    ap.add_argument("--json")
    args = ap.parse_args()

    if args.compare:
        a, b = (json.loads(Path(p).read_text()) for p in args.compare)
        c = compare(a, b)
        print(report(c))
    else:
        from hwnas.profiling import export_cached_bundle
        from hwnas.spaces import load_space
        from hwnas_profilers import Settings, profile_bundle

        space = load_space(args.space)
        t0 = time.perf_counter()
        bundle = export_cached_bundle(space)
        print(f"bundle export (cached after the first time): {time.perf_counter() - t0:.1f} s")
        tmp = Path(tempfile.mkdtemp(prefix="hwnas-repeat-"))
        tables = []
        for run in (1, 2):
            if run == 2 and args.gap_min:
                time.sleep(60 * args.gap_min)
            t0 = time.perf_counter()
            t = profile_bundle(bundle, args.backend, tmp / f"run{run}.json",
                               Settings(threads=args.threads, precision=args.precision))
            wall = time.perf_counter() - t0
            print(f"run {run}: {len(t['entries'])} blocks + {len(t['meta'].get('networks', {}))} "
                  f"networks + overhead on {args.backend} ({args.threads} thread(s), "
                  f"{os.cpu_count()} cores) in {wall:.1f} s")
            tables.append(t)
        c = compare(*tables)
        print(report(c))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(c, indent=1))


if __name__ == "__main__":
    main()
