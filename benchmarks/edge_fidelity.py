"""Fidelity of an edge runtime's device table (LiteRT, ExecuTorch), worst of N runs.

``profile_fidelity.py`` for backends whose files are converted on the host (a bundle
format other than ONNX): each run profiles the space afresh (``profile_space``, the
table's own protocol and statistic), then measures ``--n`` random architectures (seeds
disjoint from the calibration networks), converted once by the backend's own bundle
writer in the table's precision, end to end with the same protocol and statistic,
interleaved, and compares with ``DeviceTable.predict``. Targets: >= 95% within +-10% and
median abs error <= 4% in the worst run.

    python benchmarks/edge_fidelity.py --backend litert [--precision int8] [--runs 5]
        [--n 50] [--space proxyless-mobile] [--table FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
import profile_fidelity as pf


def export_nets(space, n: int, seed: int, fmt: str, precision: str):
    """``n`` random architectures converted once into ``fmt`` files of ``precision``."""
    from hwnas.arch import sample_architecture
    from hwnas.bundle import format_writer
    from hwnas.nn.subnet import build_subnet
    from hwnas.profiling import cache_dir

    writer = format_writer(fmt)
    nets_dir = cache_dir() / "fidelity" / f"{space.name}-{space.id}-s{seed}-{fmt}"
    shape = [1, space.input[2], space.input[0], space.input[1]]
    archs = [sample_architecture(space, seed=100_000 * seed + i) for i in range(n)]
    files = [writer.write_bundle_files(lambda a=a: build_subnet(space, a, 0).eval(), shape,
                                       nets_dir, f"net{i:03d}", (precision,))[precision]
             for i, a in enumerate(archs)]
    return archs, [nets_dir / f for f in files]


def measure_nets(files, backend: str, threads: int, precision: str, figure: str) -> dict:
    from hwnas_profilers import Protocol, Settings, get_profiler
    from hwnas_profilers.bundle_run import measure_with_reference

    with get_profiler(backend, Settings(threads=threads, precision=precision)) as prof:
        runners = {f"net{i:03d}": prof.load(f, None) for i, f in enumerate(files)}
        try:
            return measure_with_reference(prof, runners, replace(Protocol(), figure=figure))[0]
        finally:
            for r in runners.values():
                r.close()


def one_run(args, space, archs, files) -> dict:
    from hwnas.profiling import profile_space
    from hwnas.tables.device import load_device_table

    row: dict = {"start": time.strftime("%H:%M:%S")}
    table_path = args.table
    if table_path is None:
        table_path = Path(tempfile.mkdtemp(prefix="hwnas-edge-fidelity-")) / "table.json"
        t0 = time.perf_counter()
        profile_space(space, args.backend, table_path, threads=args.threads,
                      precision=args.precision, figure=args.figure)
        row["profile_s"] = round(time.perf_counter() - t0, 1)
    table = load_device_table(table_path)
    t0 = time.perf_counter()
    res = measure_nets(files, args.backend, args.threads, args.precision, table.figure)
    row["measure_s"] = round(time.perf_counter() - t0, 1)
    row.update(pf.score(table, space, archs, res))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    pf.add_table_args(ap)
    ap.set_defaults(backend="litert")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--figure", default="floor", choices=["floor", "median", "p10", "min"])
    ap.add_argument("--table", help="existing table (default: profile a fresh one per run)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()

    from hwnas.spaces import load_space
    from hwnas_profilers.registry import backend_class

    space = load_space(args.space)
    fmt = backend_class(args.backend).bundle_format
    archs, files = export_nets(space, args.n, args.seed, fmt, args.precision)
    rows = []
    for k in range(args.runs):
        row = one_run(args, space, archs, files)
        rows.append(row)
        print(f"run {k + 1}/{args.runs} ({row['start']}, {args.backend} {args.precision}, "
              f"{row['figure']}, profile {row.get('profile_s', '-')} s, measure "
              f"{row['measure_s']} s, scale {row['scale']:.3f}): within 10% "
              f"{100 * row['within_10pct']:.0f}%, within 5% {100 * row['within_5pct']:.0f}%, "
              f"median |err| {row['median_abs_err_pct']:.2f}%, max "
              f"{row['max_abs_err_pct']:.1f}%, mean signed {row['mean_signed_err_pct']:+.1f}%",
              flush=True)
    pf.report_worst(rows, args)


if __name__ == "__main__":
    main()
