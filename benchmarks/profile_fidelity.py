"""Fidelity of the calibrated additive model on ONNX Runtime CPU.

Profiles proxyless-mobile (or reads ``--table``), then measures N random architectures
(seeds disjoint from the calibration networks) end to end with the same protocol,
interleaved, and compares with ``DeviceTable.predict``. Prints the share within +-5% and
+-10% and the median absolute error (targets: >= 95% within 10%, median <= 4%).

    python benchmarks/profile_fidelity.py [--n 50] [--threads 1] [--table FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", help="existing table (default: profile a fresh one)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from hwnas.arch import sample_architecture
    from hwnas.nn.export import export_architecture
    from hwnas.profiling import cache_dir, profile_space
    from hwnas.spaces import load_space
    from hwnas.tables.device import load_device_table
    from profilers import Protocol, Settings, get_profiler
    from profilers.protocol import Stats, measure_interleaved

    space = load_space(args.space)
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-fidelity-"))
    table_path = args.table
    if not table_path:
        table_path = tmp / "table.json"
        t0 = time.perf_counter()
        profile_space(space, args.backend, table_path, threads=args.threads)
        print(f"profiled {args.space} on {args.backend} in {time.perf_counter() - t0:.1f} s")
    table = load_device_table(table_path)
    nets_dir = cache_dir() / "fidelity" / f"{space.name}-{space.id}-s{args.seed}"
    archs = [sample_architecture(space, seed=100_000 * args.seed + i) for i in range(args.n)]
    for i, arch in enumerate(archs):
        f = nets_dir / f"net{i:03d}.onnx"
        if not f.is_file():
            export_architecture(space, arch, f)
    prof = get_profiler(args.backend, Settings(threads=args.threads))
    runners = {f"net{i:03d}": prof.load(nets_dir / f"net{i:03d}.onnx",
                                        (1, space.input[2], space.input[0], space.input[1]))
               for i in range(args.n)}
    t0 = time.perf_counter()
    res = measure_interleaved(runners, Protocol())
    print(f"measured {args.n} networks end to end in {time.perf_counter() - t0:.1f} s")
    pred = np.array([table.predict(space, a).latency_ms for a in archs])
    additive = np.array([table.predict(space, a).additive_ms for a in archs])
    meas = np.array([res[f"net{i:03d}"].median_ms if isinstance(res[f"net{i:03d}"], Stats)
                     else np.nan for i in range(args.n)])
    err = np.abs(pred - meas) / meas
    raw = np.abs(additive - meas) / meas
    cal = table.calibration
    print(f"table: {table_path}  calibration scale {cal.scale:.4f} offset {cal.offset_ms:.4f} ms "
          f"({cal.fitted_on} nets), overhead {table.overhead_ms:.4f} ms")
    print(f"networks: {args.n}, measured {meas.min():.2f}..{meas.max():.2f} ms")
    for name, e in (("calibrated", err), ("uncalibrated additive", raw)):
        print(f"{name:>22}: within 5%: {100 * np.mean(e <= 0.05):5.1f}%  within 10%: "
              f"{100 * np.mean(e <= 0.10):5.1f}%  median abs err: {100 * np.median(e):.2f}%  "
              f"max: {100 * e.max():.2f}%")


if __name__ == "__main__":
    main()
