"""Does a torch-aoti engine run like the AOTInductor package of its own ONNX graph?

A ``--mode aoti`` torch table times each block as an AOTInductor package compiled from
the block's ONNX graph (``hwnas_profilers.backends.torch``). A torch-aoti engine is the
fine-tuned torch module, BN folded, through ``torch.export`` and AOTInductor
(``hwnas.engines.torch_aoti``). For each network this builds the real engine
(``hwnas export --backend torch-aoti``), compiles the engine's own fp32 ONNX file (same
weights) the table's way, and times the two packages interleaved in one measurement run
(``measure_models``: 3 sessions each, the fastest session's figure, the table's
statistic), ``--rounds`` times. Reported per network: engine / ONNX-graph ratio in every
round (worst and median), and each one's error against a ``--table`` prediction.

    python benchmarks/aoti_engine_gap.py --supernet runs/default/train/supernet.pt \
        [--nets 3] [--rounds 3] [--table TABLE] [--json runs/bench_aoti_gap.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--space", default="tiny-32")
    ap.add_argument("--nets", type=int, default=3, help="random networks (seeded)")
    ap.add_argument("--arch", action="append", default=[], help="a network (repeatable)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", help="a --mode aoti torch table of the space, for predictions")
    ap.add_argument("--json", default="runs/bench_aoti_gap.json")
    args = ap.parse_args()

    import onnx
    import torch

    from hwnas.arch import Architecture
    from hwnas.spaces import load_space
    from hwnas.tables.device import load_device_table
    from hwnas_profilers import Protocol, Settings, get_profiler
    from hwnas_profilers.bundle_run import measure_models

    space = load_space(args.space)
    rng = random.Random(args.seed)
    archs = [a.split(":")[-1].split(",") for a in args.arch] or \
        [[rng.choice(layer.choices) for layer in space.layers] for _ in range(args.nets)]
    table = load_device_table(Path(args.table)) if args.table else None
    shape = (1, space.input[2], space.input[0], space.input[1])
    prof = get_profiler("torch", Settings(precision="fp32", threads=1, mode="aoti"))
    work = Path(tempfile.mkdtemp(prefix="hwnas-aoti-gap-"))
    pairs = {}
    for i, ch in enumerate(archs):
        out = work / f"net{i}"
        r = subprocess.run([sys.executable, "-m", "hwnas", "export", f"{space.name}:{','.join(ch)}",
                            "--supernet", args.supernet, "--out", str(out), "--backend",
                            "torch-aoti", "--quick", "--json"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"export failed: {r.stderr.strip()[-500:]}")
        src = out / "source" / "model_fp32.onnx"
        graph = prof._aoti_package(src, onnx.load(str(src)), shape, torch.float32)
        pairs[i] = (out / "model.pt2", graph)
        print(f"net{i} {','.join(ch)}: engine and ONNX-graph package ready", flush=True)
    rows = []
    for k in range(args.rounds):
        models = {}
        for i, (eng, graph) in pairs.items():
            models[f"engine{i}"] = (eng, shape)
            models[f"graph{i}"] = (graph, shape)
        res, _ = measure_models(models, "torch", profiler=prof, protocol=Protocol())
        for i, ch in enumerate(archs):
            e, g = res[f"engine{i}"]["figure_ms"], res[f"graph{i}"]["figure_ms"]
            pred = table.predict(space, Architecture.of(space, ch)).latency_ms if table else None
            row = {"round": k, "net": i, "choices": ch, "engine_ms": e, "graph_ms": g,
                   "ratio": e / g, "predicted_ms": pred,
                   "engine_error": None if pred is None else (pred - e) / e,
                   "graph_error": None if pred is None else (pred - g) / g}
            rows.append(row)
            print(f"round {k} net{i}: engine {e:.4f} ms, ONNX graph {g:.4f} ms, ratio "
                  f"{e / g:.3f}" + ("" if pred is None else
                                    f"; predicted {pred:.4f} ms: engine {100 * row['engine_error']:+.1f}%, "
                                    f"graph {100 * row['graph_error']:+.1f}%"), flush=True)
        js = Path(args.json)
        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps({"rows": rows, "protocol": "default, floor, 3 sessions each",
                                  "torch": torch.__version__}, indent=1))
    for i, ch in enumerate(archs):
        rs = [r["ratio"] for r in rows if r["net"] == i]
        print(f"net{i} {','.join(ch)}: engine/graph median {statistics.median(rs):.3f}, "
              f"range {min(rs):.3f}-{max(rs):.3f} over {len(rs)} rounds")


if __name__ == "__main__":
    main()
