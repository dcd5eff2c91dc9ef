"""Where decisions are made: a device table's error on frontier networks beside random ones.

Each run profiles the space afresh (or takes ``--table``), then measures ``--n`` random
networks and ``--n`` networks spread along the accuracy-latency frontier (``--accuracy``,
or block multiply-accumulates as a stand-in score) end to end, all in one interleaved
measurement with the table's own protocol and statistic, and compares each group with
``DeviceTable.predict``. It also refits the calibration line on both groups measured now and
gives each group's leave-one-out error under it, the model a frontier-aware calibration would
use. Every run is printed and the worst is reported.

    python benchmarks/frontier_fidelity.py [--space tiny-32] [--backend onnxruntime]
        [--precision fp32] [--runs 5] [--n 24] [--accuracy ACC.csv|json] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from profile_fidelity import add_table_args, export_nets, measure_nets


def frontier_archs(space, table, n: int, accuracy: str | None, exclude=()):
    """``n`` frontier points spread evenly over the frontier's latency range, leaving out
    ``exclude`` (networks the table's line was fitted on: they are not held out)."""
    from hwnas.solver import frontier
    from hwnas.tables import load_accuracy_table
    from hwnas.tables.crossruntime import macs_scores

    acc = load_accuracy_table(accuracy, space) if accuracy else macs_scores(space)
    front = frontier(acc, table)
    seen = {tuple(a.choices) for a in exclude}
    archs = [a for a in front.architectures() if tuple(a.choices) not in seen]
    idx = sorted({int(round(q * (len(archs) - 1))) for q in np.linspace(0, 1, n)})
    return [archs[i] for i in idx]


def export_named(space, archs, folder: Path, start: int) -> None:
    from hwnas.nn.export import export_architecture

    for i, a in enumerate(archs):
        f = folder / f"net{start + i:03d}.onnx"
        export_architecture(space, a, f)


def group_errors(table, space, archs, res, names, statistic=None) -> dict:
    stat = statistic or table.figure
    preds = [table.predict(a, space, statistic=stat) for a in archs]
    pred = np.array([p.latency_ms for p in preds])
    add = np.array([p.additive_ms for p in preds])
    meas = np.array([res[k].figure(stat) for k in names])
    return {"pred": pred, "add": add, "meas": meas}


def statistic_rows(table, space, archs, res, names, k: int) -> dict:
    """The predicted median and p90 against the measured ones, random and frontier apart
    (targets: median within 10%, p90 within 15%, for >= 90% of the networks)."""
    out = {}
    for stat, tol in (("median", 0.10), ("p90", 0.15)):
        if stat not in table.statistics():
            continue
        g = group_errors(table, space, archs, res, names, stat)
        e = (g["pred"] - g["meas"]) / g["meas"]
        for name, part in (("random", e[:k]), ("frontier", e[k:])):
            out[f"{stat}_{name}"] = {**summary(part), "tol": tol,
                                     "within_tol": float(np.mean(np.abs(part) <= tol))}
    return out


def summary(e: np.ndarray) -> dict:
    a = np.abs(e)
    return {"within_5pct": float(np.mean(a <= 0.05)), "within_10pct": float(np.mean(a <= 0.10)),
            "median_abs_err_pct": float(100 * np.median(a)),
            "mean_signed_err_pct": float(100 * np.mean(e)), "n": int(len(e))}


def one(args, space) -> dict:
    import shutil
    import tempfile

    from hwnas.profiling import profile_space
    from hwnas.tables.device import load_device_table
    from hwnas_profilers.calibration import fit_calibration

    row: dict = {"start": time.strftime("%H:%M:%S")}
    path = Path(args.table) if args.table else Path(tempfile.mkdtemp()) / "table.json"
    if not args.table:
        t0 = time.perf_counter()
        # the default profile: its lines fitted on random and stand-in frontier networks
        profile_space(space, args.backend, path, threads=args.threads, precision=args.precision,
                      frontier_nets=args.frontier_nets)
        row["profile_s"] = round(time.perf_counter() - t0, 1)
    table = load_device_table(path, check_machine=False)
    rnd, rnd_dir = export_nets(space, args.n, args.seed)
    fitted_on = []
    if frontier_calibrated(table):
        fitted_on = frontier_networks(table, space, table_frontier_count(table))
    fr = frontier_archs(space, table, args.n_frontier or args.n, args.accuracy, fitted_on)
    work = Path(tempfile.mkdtemp(prefix="hwnas-frontier-"))
    for i in range(len(rnd)):
        shutil.copy(rnd_dir / f"net{i:03d}.onnx", work / f"net{i:03d}.onnx")
    export_named(space, fr, work, len(rnd))
    archs = rnd + fr
    t0 = time.perf_counter()
    res = measure_nets(space, work, len(archs), args.backend, args.threads, args.precision,
                       table.figure)
    row["measure_s"] = round(time.perf_counter() - t0, 1)
    names = [f"net{i:03d}" for i in range(len(archs))]
    g = group_errors(table, space, archs, res, names)
    e = (g["pred"] - g["meas"]) / g["meas"]
    k = len(rnd)
    row["random"], row["frontier"] = summary(e[:k]), summary(e[k:])
    # one line refitted on both groups measured now: each group's held-out error
    loo = []
    for i in range(len(archs)):
        keep = np.arange(len(archs)) != i
        f = fit_calibration(g["add"][keep], g["meas"][keep])
        loo.append((f["scale"] * g["add"][i] + f["offset_ms"] - g["meas"][i]) / g["meas"][i])
    loo = np.array(loo)
    row["refit_random"], row["refit_frontier"] = summary(loo[:k]), summary(loo[k:])
    row.update(statistic_rows(table, space, archs, res, names, k))
    row["frontier_fitted_on"] = len(fitted_on)
    return row


def frontier_calibrated(table) -> bool:
    from hwnas.recalibration import frontier_calibrated as fc

    return fc(table)


def frontier_networks(table, space, n: int):
    from hwnas.recalibration import frontier_networks as fn

    return fn(table, space, n)


def table_frontier_count(table) -> int:
    """How many stand-in frontier networks the table's line was fitted on."""
    groups = dict(table.calibration.report).get("groups") or {}
    return int((groups.get("frontier") or {}).get("nets") or 0)


KEYS = ("random", "frontier", "refit_random", "refit_frontier", "median_random",
        "median_frontier", "p90_random", "p90_frontier")


def main() -> None:
    ap = argparse.ArgumentParser()
    add_table_args(ap)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--n-frontier", type=int, default=0,
                    help="frontier networks (default: --n)")
    ap.add_argument("--frontier-nets", type=int, default=None,
                    help="the fresh profile's own frontier networks (default: hwnas profile's)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--accuracy", help="accuracy table (default: MACs as a stand-in score)")
    ap.add_argument("--table", help="existing table (default: profile a fresh one per run)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()
    from hwnas.spaces import load_space

    space = load_space(args.space)
    rows = []
    for r in range(args.runs):
        row = one(args, space)
        rows.append(row)
        print(f"run {r + 1}/{args.runs} ({row['start']}, profile {row.get('profile_s', '-')} s, "
              f"measure {row['measure_s']} s)", flush=True)
        for key in KEYS:
            if key not in row:
                continue
            s = row[key]
            tol = (f", within {100 * s['tol']:.0f}% {100 * s['within_tol']:3.0f}%"
                   if "tol" in s else "")
            print(f"  {key:15s} n={s['n']:2d}: within 5% {100 * s['within_5pct']:3.0f}%, 10% "
                  f"{100 * s['within_10pct']:3.0f}%{tol}, median |err| "
                  f"{s['median_abs_err_pct']:.2f}%, mean signed "
                  f"{s['mean_signed_err_pct']:+.2f}%", flush=True)
    for key in [k for k in KEYS if all(k in r for r in rows)]:
        w = min(rows, key=lambda x: (x[key]["within_5pct"], -x[key]["median_abs_err_pct"]))
        print(f"WORST {key}: within 5% {100 * w[key]['within_5pct']:.0f}%, median "
              f"{w[key]['median_abs_err_pct']:.2f}%")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
