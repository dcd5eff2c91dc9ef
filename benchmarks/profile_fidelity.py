"""Fidelity of a device table, worst of N back-to-back runs.

Each run profiles the space afresh (``hwnas.profiling.profile_space``, the table's own
protocol and statistic) and then measures ``--n`` random architectures (seeds disjoint from
the calibration networks) end to end with the same protocol and statistic, interleaved,
and compares with ``DeviceTable.predict``. The runs go back to back; the benchmark reports
every run and the **worst** one (targets: >= 95% within +-10% and median abs error <= 4%
in each run). ``--table`` skips the profiling and checks one existing table instead.

    python benchmarks/profile_fidelity.py [--backend onnxruntime] [--runs 5] [--n 50]
        [--figure floor] [--table FILE] [--json OUT] [--device cuda --mode cuda-graph]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def one_run(args, space, archs, nets_dir, table_path=None) -> dict:
    from hwnas.profiling import profile_space
    from hwnas.tables.device import load_device_table

    row: dict = {"start": time.strftime("%H:%M:%S")}
    if table_path is None:
        table_path = Path(tempfile.mkdtemp(prefix="hwnas-fidelity-")) / "table.json"
        t0 = time.perf_counter()
        profile_space(space, args.backend, table_path, threads=args.threads,
                      precision=args.precision, figure=args.figure, mode=args.mode,
                      device=args.device)
        row["profile_s"] = round(time.perf_counter() - t0, 1)
    table = load_device_table(table_path)
    t0 = time.perf_counter()
    res = measure_nets(space, nets_dir, args.n, args.backend, args.threads, args.precision,
                       table.figure, mode=args.mode, device=args.device)
    row["measure_s"] = round(time.perf_counter() - t0, 1)
    row.update(score(table, space, archs, res))
    return row


def measure_nets(space, nets_dir, n: int, backend: str, threads: int, precision: str,
                 figure: str, mode: str = "", device: str = "cpu") -> dict:
    """The ``n`` exported nets end to end, interleaved, by the statistic ``figure``."""
    from hwnas_profilers import Protocol, Settings, get_profiler

    from hwnas_profilers.bundle_run import measure_with_reference

    prof = get_profiler(backend, Settings(threads=threads, precision=precision, mode=mode,
                                          device=device))
    shape = (1, space.input[2], space.input[0], space.input[1])
    runners = {f"net{i:03d}": prof.load(nets_dir / f"net{i:03d}.onnx", shape) for i in range(n)}
    try:
        return measure_with_reference(prof, runners, replace(Protocol(), figure=figure))[0]
    finally:
        for r in runners.values():
            r.close()


def score(table, space, archs, res: dict) -> dict:
    """Prediction errors of ``table`` against the measured ``res`` (its own statistic)."""
    from hwnas_profilers.protocol import Stats

    preds = [table.predict(space, a) for a in archs]
    pred = np.array([p.latency_ms for p in preds])
    keys = [f"net{i:03d}" for i in range(len(archs))]
    meas = np.array([res[k].figure(table.figure) if isinstance(res[k], Stats) else np.nan
                     for k in keys])
    e = (pred - meas) / meas
    a = np.abs(e)
    row = {"figure": table.figure, "scale": table.calibration.scale,
           "within_5pct": float(np.mean(a <= 0.05)), "within_10pct": float(np.mean(a <= 0.10)),
           "median_abs_err_pct": float(100 * np.median(a)), "max_abs_err_pct": float(100 * a.max()),
           "mean_signed_err_pct": float(100 * np.mean(e)),
           "measured_ms": [float(meas.min()), float(meas.max())]}
    ups = [p.upper_ms for p in preds]
    if all(u is not None for u in ups):
        p90 = np.array([res[k].p90_ms for k in keys])
        row["upper_covers_p90_pct"] = float(100 * np.mean(np.array(ups) >= 0.9 * p90))
    return row


def export_nets(space, n: int, seed: int):
    """``n`` random architectures (seeds disjoint from calibration nets), exported once."""
    from hwnas.arch import sample_architecture
    from hwnas.nn.export import export_architecture
    from hwnas.profiling import cache_dir

    nets_dir = cache_dir() / "fidelity" / f"{space.name}-{space.id}-s{seed}"
    archs = [sample_architecture(space, seed=100_000 * seed + i) for i in range(n)]
    for i, arch in enumerate(archs):
        f = nets_dir / f"net{i:03d}.onnx"
        if not f.is_file():
            export_architecture(space, arch, f)
    return archs, nets_dir


def add_table_args(ap: argparse.ArgumentParser) -> None:
    """What a table is profiled on, shared by the table benchmarks."""
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", default="", help="backend execution mode (torch: cuda-graph, aoti)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N ...")


def main() -> None:
    ap = argparse.ArgumentParser()
    add_table_args(ap)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--figure", default="floor", choices=["floor", "median", "p10", "min", "ref"])
    ap.add_argument("--table", help="existing table (default: profile a fresh one per run)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()

    from hwnas.spaces import load_space

    space = load_space(args.space)
    archs, nets_dir = export_nets(space, args.n, args.seed)
    rows = []
    for k in range(args.runs):
        row = one_run(args, space, archs, nets_dir, args.table)
        rows.append(row)
        print(f"run {k + 1}/{args.runs} ({row['start']}, {row['figure']}, profile "
              f"{row.get('profile_s', '-')} s, measure {row['measure_s']} s, scale "
              f"{row['scale']:.3f}): within 10% {100 * row['within_10pct']:.0f}%, within 5% "
              f"{100 * row['within_5pct']:.0f}%, median |err| {row['median_abs_err_pct']:.2f}%, "
              f"max {row['max_abs_err_pct']:.1f}%, mean signed {row['mean_signed_err_pct']:+.1f}%"
              + (f", upper >= 0.9 p90: {row['upper_covers_p90_pct']:.0f}%"
                 if "upper_covers_p90_pct" in row else ""), flush=True)
    report_worst(rows, args)


def report_worst(rows: list, args) -> None:
    """The worst run beside the typical one, and every row to ``--json``."""
    worst = min(rows, key=lambda r: (r["within_10pct"], -r["median_abs_err_pct"]))
    print(f"WORST of {len(rows)}: within 10% {100 * worst['within_10pct']:.0f}%, median |err| "
          f"{worst['median_abs_err_pct']:.2f}% (typical: within 10% "
          f"{100 * np.median([r['within_10pct'] for r in rows]):.0f}%, median |err| "
          f"{np.median([r['median_abs_err_pct'] for r in rows]):.2f}%)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
