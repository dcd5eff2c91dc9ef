"""Cross-check of the OpenVINO backend against the vendor tool ``benchmark_app``.

For 5 blocks of proxyless-mobile (small to large), compares hwnas's figure (the profiling
protocol, one synchronous request, N threads) with ``benchmark_app -hint none -nireq 1
-api sync -nthreads N``'s median latency. Target: all within 10%. On the shared machine
the vendor tool alone moves by 20-30% between two 4-second runs, so the two are run
alternately ``--pairs`` times (hwnas, vendor, hwnas, vendor, ...) and the median of the
pairwise ratios is the figure, so a neighbour's burst does not land on one side only.
A skip block (a few microseconds) is printed for information: there the Python binding's
per-call cost, which the additive model subtracts as overhead, dominates.

    python benchmarks/profile_openvino_crosscheck.py [--threads 1]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

BLOCKS = [
    "mbconv_i28x28x40_o40_k3_e6_s1_se0_relu6_r1",
    "mbconv_i56x56x24_o24_k3_e3_s1_se0_relu6_r1",
    "mbconv_i14x14x96_o96_k5_e6_s1_se0_relu6_r1",
    "mbconv_i112x112x16_o24_k7_e6_s2_se0_relu6_r0",
    "head_i7x7x320_o1280_n1000_relu6",
]


def benchmark_app(path: Path, threads: int, seconds: int) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    out = subprocess.run([exe, "-m", str(path), "-d", "CPU", "-hint", "none", "-nireq", "1",
                          "-api", "sync", "-nthreads", str(threads), "-t", str(seconds),
                          "-infer_precision", "f32"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Median:\s+([0-9.]+)\s*(ms|us)", out)
    if not m:
        raise RuntimeError(f"no median in benchmark_app output:\n{out[-2000:]}")
    return float(m.group(1)) / (1000.0 if m.group(2) == "us" else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()

    from hwnas.profiling import export_cached_bundle
    from hwnas.spaces import load_space
    from hwnas_profilers import Settings, measure_model

    bundle = export_cached_bundle(load_space("proxyless-mobile"))
    worst = 0.0
    print(f"{'block':<48} {'hwnas ms':>9} {'bench_app ms':>12} {'diff':>7}")
    import numpy as np

    for key in BLOCKS + ["skip_i28x28x40_o40"]:
        path = bundle / "blocks" / f"{key}.onnx"
        ours, theirs = [], []
        for _ in range(args.pairs):
            ours.append(measure_model(path, "openvino", Settings(threads=args.threads))["median_ms"])
            theirs.append(benchmark_app(path, args.threads, args.seconds))
        o, t = float(np.median(ours)), float(np.median(theirs))
        diff = float(np.median(np.array(ours) / np.array(theirs))) - 1.0
        info = key not in BLOCKS
        if not info:
            worst = max(worst, abs(diff))
        print(f"{key:<48} {o:9.4f} {t:12.4f} {100 * diff:+6.1f}%{'  (info)' if info else ''}")
    print(f"worst |difference| over the {len(BLOCKS)} blocks: {100 * worst:.1f}% (target <= 10%)")


if __name__ == "__main__":
    main()
