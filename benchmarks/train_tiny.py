"""Benchmark: the whole PONAS two-stage run on tiny-32 / digits, and how good its table is.

Prints: wall time of the two-stage run (meta-training + layer-wise fine-tuning + table);
Kendall tau / Spearman between table-predicted and real validation accuracy of random
sub-networks (inherited weights, and after a short fine-tune); the table's best
architecture against the mean of 20 random architectures of no larger latency (latency
from the shipped tiny-32 device table when it covers the space, else additive MACs).

    python benchmarks/train_tiny.py [--out DIR] [--epochs N] [--proxy SETTING] [--json]

Defaults are the tuned setting reported in RESULTS.md: the full 32x32 setting (no proxy;
``--proxy resolution=16`` is the EcoNAS resolution proxy, about 2.4x faster), stage 2
with sampled earlier layers, 12 context paths and no per-candidate fine-tuning. The PONAS
setting proper is ``--prefix chosen --finetune-steps 10 --later-paths 6``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import random
import sys
import tempfile
import time
from typing import Any

# On a shared 2-core machine another process often holds a core; OpenMP's default spin-wait
# then turns each parallel region into a busy wait (a 1-second epoch took 47-118 s here).
# Passive waiting must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from hwnas.errors import UserError
from hwnas.solver.brute_force import LatencyFn, exhaustive_best
from hwnas.spaces import load_space
from hwnas.tables.accuracy import AccuracyTable
from hwnas.train import TrainConfig, data_for, load_checkpoint, train_accuracy_table
from hwnas.train.proxy import Proxy
from hwnas.train.validate import (EvalSettings, check_match, real_accuracy,
                                  validate_table)


def best_vs_random(supernet, table: AccuracyTable, data, latency: LatencyFn,
                   budget: float | None = None, randoms: int = 20,
                   settings: EvalSettings = EvalSettings()) -> dict[str, Any]:
    """The table's best architecture (exhaustive over small spaces, else per-layer argmax)
    within ``budget``, against ``randoms`` random architectures of no larger latency."""
    check_match(supernet, table)
    best = exhaustive_best(table, latency, budget)
    if best is None:
        raise UserError(f"no architecture fits the latency budget {budget}")
    lat = latency(best)
    rng = random.Random(f"random:{settings.seed}")
    pool: list[tuple[str, ...]] = []
    for _ in range(1000 * randoms):  # bounded rejection sampling
        if len(pool) >= randoms:
            break
        c = tuple(rng.choice(layer.choices) for layer in table.space.layers)
        if latency(c) <= lat:
            pool.append(c)
    best_acc = real_accuracy(supernet, best, data, settings)
    accs = [real_accuracy(supernet, c, data, settings) for c in pool]

    def side(k: int) -> dict[str, Any]:
        vals = [a[k] for a in accs if a[k] is not None]
        return {"best": best_acc[k], "random_mean": float(np.mean(vals)) if vals else None,
                "random_max": float(np.max(vals)) if vals else None}

    out = {"best": list(best), "best_latency": lat, "best_score": table.total(best),
           "randoms": len(pool), "inherited": side(0)}
    if settings.finetune_steps > 0:
        out["finetuned"] = side(1)
    return out


def macs_latency(table: AccuracyTable) -> LatencyFn:
    """Additive MACs as the latency stand-in (no device table needed)."""
    space = table.space
    per = [{b.choice(): b.macs() for b in layer.candidates} for layer in space.layers]
    fixed = sum(b.macs() for b in space.fixed_blocks())
    return lambda choices: float(fixed + sum(p[c] for p, c in zip(per, choices)))


def device_latency(table: AccuracyTable, device_table: Any) -> LatencyFn:
    """Predicted milliseconds from a :class:`~hwnas.tables.DeviceTable` (additive model)."""
    const, costs = device_table.layer_costs(table.space)
    index = [{c: j for j, c in enumerate(layer.choices)} for layer in table.space.layers]
    return lambda choices: float(const + sum(float(cost[ix[c]])
                                             for cost, ix, c in zip(costs, index, choices)))


def latency_fn(table):
    from hwnas.tables import load_device_table

    try:
        dt = load_device_table("tiny-32_onnxruntime_cpu_fp32")
        fn = device_latency(table, dt)
        fn(table.space.sample(0))
        return fn, "ms, shipped device table tiny-32_onnxruntime_cpu_fp32"
    except (UserError, KeyError, ValueError):
        return macs_latency(table), "MACs (additive)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--finetune-steps", type=int, default=0)
    ap.add_argument("--later-paths", type=int, default=12)
    ap.add_argument("--bn-batches", type=int, default=8)
    ap.add_argument("--prefix", choices=("chosen", "sampled"), default="sampled")
    ap.add_argument("--val-fraction", type=float, default=0.3)
    ap.add_argument("--proxy", default="full")
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--val-finetune-steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)

    space = load_space("tiny-32")
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      finetune_steps=args.finetune_steps, later_paths=args.later_paths,
                      bn_batches=args.bn_batches, prefix=args.prefix,
                      val_fraction=args.val_fraction,
                      seed=args.seed, proxy=Proxy.parse(args.proxy))
    out = args.out or tempfile.mkdtemp(prefix="hwnas-train-tiny-")
    t0 = time.perf_counter()
    data = data_for(space, "digits", cfg)
    result = train_accuracy_table(space, data, out, cfg)
    train_s = time.perf_counter() - t0
    print(f"two-stage run: {train_s:.1f} s (meta {result.seconds['meta_train']:.1f} s, "
          f"layer-wise {result.seconds['layerwise']:.1f} s), chosen {','.join(result.chosen)}",
          file=sys.stderr)

    net = load_checkpoint(result.checkpoint_path).supernet()
    table = result.table
    settings = EvalSettings(batch_size=cfg.batch_size, bn_batches=cfg.bn_batches,
                            finetune_steps=args.val_finetune_steps, seed=args.seed + 1)
    t1 = time.perf_counter()
    val = validate_table(net, table, data, args.samples, settings)
    val_s = time.perf_counter() - t1
    lat, lat_unit = latency_fn(table)
    t2 = time.perf_counter()
    top = best_vs_random(net, table, data, lat, None, 20, settings)
    rand_lats = sorted(lat(table.space.sample(10_000 + i)) for i in range(200))
    budget = statistics.median(rand_lats)
    mid = best_vs_random(net, table, data, lat, budget, 20, settings)
    cmp_s = time.perf_counter() - t2

    figures = {
        "space": space.name, "data": data.source, "proxy": cfg.proxy.tag(),
        "config": cfg.to_dict(), "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "two_stage_seconds": round(train_s, 1),
        "stage_seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "validation_seconds": round(val_s, 1), "comparison_seconds": round(cmp_s, 1),
        "samples": val["samples"],
        "kendall_tau_inherited": round(val["inherited"]["kendall_tau"], 3),
        "spearman_inherited": round(val["inherited"]["spearman_rho"], 3),
        "kendall_tau_finetuned": round(val["finetuned"]["kendall_tau"], 3),
        "spearman_finetuned": round(val["finetuned"]["spearman_rho"], 3),
        "val_finetune_steps": args.val_finetune_steps,
        "mean_real_acc_inherited": round(statistics.mean(r["inherited"] for r in val["rows"]), 4),
        "latency_unit": lat_unit,
        "best": top, "best_at_median_budget": {**mid, "budget": budget},
        "out": out,
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"tiny-32 / {data.source}, proxy {cfg.proxy.tag()}, {torch.get_num_threads()} threads")
    print(f"two-stage run + table: {train_s:.1f} s  ({figures['stage_seconds']})")
    print(f"table vs real accuracy, {val['samples']} random sub-networks: Kendall tau "
          f"{figures['kendall_tau_inherited']} (inherited), {figures['kendall_tau_finetuned']} "
          f"(after {args.val_finetune_steps} fine-tune steps); Spearman "
          f"{figures['spearman_inherited']} / {figures['spearman_finetuned']}")
    for name, d in (("table best", top), ("table best @ median latency", mid)):
        for k in ("inherited", "finetuned"):
            s = d[k]
            print(f"{name} [{','.join(d['best'])}] latency {d['best_latency']:.4g} ({lat_unit}): "
                  f"{k} acc {s['best']:.4f} vs mean of {d['randoms']} random no slower "
                  f"{s['random_mean']:.4f} (max {s['random_max']:.4f})")
    print(f"validation {val_s:.1f} s, comparisons {cmp_s:.1f} s; outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
