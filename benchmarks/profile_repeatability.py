"""Repeatability and cost: two independent profiling runs of a whole space.

Each run is a fresh ``profile_bundle`` into its own table (bundle export excluded from the
cost, reported separately). Prints the wall time of each run (target: proxyless-mobile on
ONNX Runtime CPU in <= 180 s on 2 cores) and the share of blocks whose medians agree
within 5% (target >= 95%).

    python benchmarks/profile_repeatability.py [--space proxyless-mobile] [--backend onnxruntime]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from hwnas.profiling import export_cached_bundle
    from hwnas.spaces import load_space
    from profilers import Settings, profile_bundle

    space = load_space(args.space)
    t0 = time.perf_counter()
    bundle = export_cached_bundle(space)
    print(f"bundle export (cached after the first time): {time.perf_counter() - t0:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-repeat-"))
    tables = []
    for run in (1, 2):
        t0 = time.perf_counter()
        t = profile_bundle(bundle, args.backend, tmp / f"run{run}.json",
                           Settings(threads=args.threads))
        wall = time.perf_counter() - t0
        n_blocks = len(t["entries"])
        print(f"run {run}: {n_blocks} blocks + {len(t['meta'].get('networks', {}))} networks + "
              f"overhead on {args.backend} ({args.threads} thread(s), {os.cpu_count()} cores) in "
              f"{wall:.1f} s")
        tables.append(t)
    a, b = tables
    keys = sorted(a["entries"])
    m1 = np.array([a["entries"][k]["median_ms"] for k in keys])
    m2 = np.array([b["entries"][k]["median_ms"] for k in keys])
    rel = np.abs(m1 - m2) / ((m1 + m2) / 2)
    print(f"blocks within 5% between runs: {100 * np.mean(rel <= 0.05):.1f}% "
          f"({int(np.sum(rel <= 0.05))}/{len(keys)}); within 10%: {100 * np.mean(rel <= 0.10):.1f}%; "
          f"median |diff| {100 * np.median(rel):.2f}%, max {100 * rel.max():.1f}% "
          f"({keys[int(rel.argmax())]})")
    ms = [t["meta"]["overhead"]["median_ms"] for t in tables]
    print(f"per-call overhead: {ms[0]:.4f} / {ms[1]:.4f} ms; calibration scale "
          f"{a['calibration']['scale']:.3f} / {b['calibration']['scale']:.3f}")


if __name__ == "__main__":
    main()
