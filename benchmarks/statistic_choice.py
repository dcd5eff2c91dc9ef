"""Which latency statistic holds on a noisy host? (the evidence behind the floor statistic)

One random network per space is loaded in ONNX Runtime (1 thread) and timed in ``--blocks``
consecutive blocks of ``--runs`` calls (one session), then in ``--sessions`` fresh sessions
of one block each. For every candidate statistic (median, p25, p10, p5, min) it prints how
far the per-block figures move: (max/min - 1) over the blocks and their coefficient of
variation. The statistic a table predicts should move least while staying independent of
the sample count (a minimum falls as n grows; a percentile does not).

    python benchmarks/statistic_choice.py [--blocks 12] [--runs 60] [--sessions 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

STATS = {"median": 50, "p25": 25, "p10": 10, "p5": 5, "min": 0}


def figures(samples: np.ndarray) -> dict[str, float]:
    return {k: float(np.percentile(samples, q)) for k, q in STATS.items()}


def movement(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for k in STATS:
        v = np.array([r[k] for r in rows])
        out[k] = {"range_pct": 100 * (v.max() / v.min() - 1), "cv_pct": 100 * v.std() / v.mean()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spaces", default="proxyless-mobile,tiny-32")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="repeat the whole experiment")
    ap.add_argument("--out", default="runs/bench_statistic.json")
    args = ap.parse_args()

    from hwnas.arch import sample_architecture
    from hwnas.nn.export import export_architecture
    from hwnas.profiling import cache_dir
    from hwnas.spaces import load_space
    from hwnas_profilers import Settings, get_profiler

    prof = get_profiler("onnxruntime", Settings(threads=1))
    report = []
    for rep in range(args.repeat):
        for name in args.spaces.split(","):
            space = load_space(name)
            f = cache_dir() / "statistic" / f"{space.name}-{space.id}.onnx"
            if not f.is_file():
                export_architecture(space, sample_architecture(space, seed=4242), f)
            shape = (1, space.input[2], space.input[0], space.input[1])
            r = prof.load(f, shape)
            for _ in range(20):
                r.time_ms()
            blocks = []
            for _ in range(args.blocks):
                blocks.append(figures(np.array([r.time_ms() for _ in range(args.runs)])))
            r.close()
            sessions = []
            for _ in range(args.sessions):
                r = prof.load(f, shape)
                for _ in range(20):
                    r.time_ms()
                sessions.append(figures(np.array([r.time_ms() for _ in range(args.runs)])))
                r.close()
            row = {"space": name, "repeat": rep, "time": time.strftime("%H:%M:%S"),
                   "blocks": movement(blocks), "sessions": movement(sessions),
                   "block_figures": blocks, "session_figures": sessions}
            report.append(row)
            print(f"{name} (repeat {rep}, {row['time']}): median of blocks "
                  f"{np.median([b['median'] for b in blocks]):.4f} ms")
            print(f"  {'stat':7s} {'blocks range':>13s} {'blocks cv':>10s} "
                  f"{'sessions range':>15s} {'sessions cv':>12s}")
            for k in STATS:
                b, s = row["blocks"][k], row["sessions"][k]
                print(f"  {k:7s} {b['range_pct']:12.1f}% {b['cv_pct']:9.1f}% "
                      f"{s['range_pct']:14.1f}% {s['cv_pct']:11.1f}%")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
