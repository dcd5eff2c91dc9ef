"""The PONAS table + knapsack against a genetic search with and without
supernet fine-tuning, and against random networks, on the same budgets; the hierarchical
proxy's cost and rank consistency.

    python benchmarks/evolve_bench.py --run DIR [--budgets 5] [--population 12]
        [--generations 4] [--finetune-steps 100] [--json runs/bench_evolve.json]

``DIR`` is a finished ``hwnas run`` folder whose supernet was trained with a held-out test
split (``train/``, its device table). For 5 budgets spread over the frontier, each method
picks one network within the budget:

  (a) ``ponas``: the accuracy table + the exact knapsack;
  (b) ``ga_ft``: ``hwnas.train.evolve`` with supernet fine-tuning between generations;
  (c) ``ga``: the same search without fine-tuning;
  (h) ``ga_ft_hier``: (b) with the hierarchical proxy (validation shares 0.25, 0.5, 1);
  (d) 20 random networks no slower than the budget (uniform draws, kept when they fit).

Every picked network is then treated alike: extracted from the *original* supernet,
fine-tuned for the same ``--finetune-steps`` steps, and scored on the held-out test split
(no method saw it). Each figure comes with a 95% bootstrap interval over the test images;
a method's difference to (a) is a tie when the paired interval holds 0. Search cost is
wall seconds and images processed. Rank consistency: 40 random networks scored by the
supernet on each proxy level against the full validation set (Kendall tau).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwnas.arch import Architecture  # noqa: E402
from hwnas.run.folder import RunFolder  # noqa: E402
from hwnas.tables import load_accuracy_table, load_device_table  # noqa: E402
from hwnas.train.checkpoint import load_checkpoint  # noqa: E402
from hwnas.train.evolve import Costs, EvolveConfig, Repair, _score, evolve  # noqa: E402
from hwnas.train.loop import recalibrate_bn, sgd, train_steps  # noqa: E402
from hwnas.train.supernet import extract_subnet  # noqa: E402

BOOT = 2000


def test_correct(supernet, choices, data, steps: int, seed: int) -> np.ndarray:
    """Per test image, 1 if the network (inherited weights, ``steps`` of fine-tuning)
    classifies it right."""
    net = extract_subnet(supernet, choices)
    recalibrate_bn(net, data.train_x, 32, 8, seed)
    if steps:
        opt = sgd(net.parameters(), 0.01)
        train_steps(net, data.train_x, data.train_y, opt, lambda r: None, steps, 32, seed)
    net.eval()
    with torch.no_grad():
        return (net(data.test_x).argmax(1) == data.test_y).numpy().astype(float)


def interval(v: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    idx = rng.integers(0, len(v), (BOOT, len(v)))
    m = v[idx].mean(1)
    return float(v.mean()), float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))


def paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> dict:
    mean, lo, hi = interval(a - b, rng)
    return {"diff": mean, "lo": lo, "hi": hi,
            "verdict": "tie" if lo <= 0 <= hi else ("better" if lo > 0 else "worse")}


def kendall(a, b) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True)
    ap.add_argument("--backend", default="onnxruntime", help="the run's engine backend")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--data", default=None, help="default: the data the run trained on")
    ap.add_argument("--budgets", type=int, default=5)
    ap.add_argument("--population", type=int, default=12)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--ga-finetune-steps", type=int, default=40)
    ap.add_argument("--finetune-steps", type=int, default=100,
                    help="the same short fine-tune of every picked network")
    ap.add_argument("--random", type=int, default=20)
    ap.add_argument("--json", default="runs/bench_evolve.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    run = Path(args.run)
    folder = RunFolder.for_backend(run, args.backend, args.precision)
    ck_path = folder.checkpoint
    ck = load_checkpoint(ck_path)
    space = ck.target
    acc = load_accuracy_table(folder.accuracy_table, space)
    dev = load_device_table(folder.device_table)
    # the data the run trained on (a built-in name: digits or digits-hard), unless given
    data_ref = args.data or str(acc.provenance.get("data", "digits")).split(" ")[0]
    data = ck.data_split(data_ref)
    if not data.has_test:
        raise SystemExit(f"{run}: its supernet was trained without a held-out test split")
    supernet = ck.supernet().eval()
    from hwnas.solver import frontier

    t = time.perf_counter()
    front = frontier(acc, dev)
    knap_s = time.perf_counter() - t
    pts = front.points()
    lo, hi = pts[0].latency_ms, pts[-1].latency_ms
    qs = np.linspace(0.1, 1.0, args.budgets)
    budgets = sorted({min((p.latency_ms for p in pts if p.latency_ms >= lo + q * (hi - lo)),
                          default=hi) for q in qs})
    prov = acc.provenance
    rng = np.random.default_rng(0)
    rows = []
    out_dir = Path(args.json).with_suffix("")
    for b in budgets:
        picks: dict[str, dict] = {}
        a = front.best(b)
        picks["ponas"] = {"choices": list(a.choices), "cost_s": knap_s,
                          "cost_note": "knapsack only; the table cost "
                                       f"{sum((prov.get('seconds') or {}).values()):.0f} s once "
                                       "for every budget"}
        for name, ft, levels in (("ga_ft", args.ga_finetune_steps, (1.0,)),
                                 ("ga", 0, (1.0,)),
                                 ("ga_ft_hier", args.ga_finetune_steps, (0.25, 0.5, 1.0))):
            cfg = EvolveConfig(population=args.population, generations=args.generations,
                               parents=max(2, args.population // 3), finetune_steps=ft,
                               levels=levels)
            st = evolve(ck_path, dev, b, data, out_dir / name / f"b{b:.4f}", cfg)
            picks[name] = {"choices": st["best"], "cost_s": st["costs"]["seconds"],
                           "eval_images": st["costs"]["eval_images"],
                           "train_images": st["costs"]["train_images"],
                           "evaluations": st["costs"]["evaluations"]}
        rep = Repair(space, dev, b)
        rnd: list = []
        r = random.Random(f"random:{b}")
        for _ in range(200_000):
            if len(rnd) >= args.random:
                break
            g = [r.randrange(len(ch)) for ch in rep.choices]
            if rep.latency(g) <= b:
                rnd.append(list(rep.names(g)))
        correct = {k: test_correct(supernet, v["choices"], data, args.finetune_steps, 0)
                   for k, v in picks.items()}
        rnd_acc = [test_correct(supernet, ch, data, args.finetune_steps, 0) for ch in rnd]
        row = {"budget_ms": b, "test_images": int(len(data.test_y)), "methods": {}}
        for k, v in picks.items():
            m, lo_, hi_ = interval(correct[k], rng)
            lat = dev.predict(space, Architecture.of(space, v["choices"])).latency_ms
            row["methods"][k] = {**v, "predicted_ms": lat, "test_acc": m, "ci": [lo_, hi_],
                                 **({"vs_ponas": paired(correct[k], correct["ponas"], rng)}
                                    if k != "ponas" else {})}
        means = [float(x.mean()) for x in rnd_acc]
        best = int(np.argmax(means)) if means else None
        row["random"] = {"n": len(rnd), "mean_test_acc": float(np.mean(means)) if means else None,
                         "best_test_acc": means[best] if means else None,
                         "ponas_vs_random_mean": float(correct["ponas"].mean() - np.mean(means))
                         if means else None,
                         "ponas_vs_random_best": paired(correct["ponas"], rnd_acc[best], rng)
                         if means else None}
        rows.append(row)
        print(json.dumps({"budget_ms": b, **{k: round(v["test_acc"], 4)
                                            for k, v in row["methods"].items()},
                          "random_mean": row["random"]["mean_test_acc"],
                          "random_best": row["random"]["best_test_acc"]}), flush=True)
    # rank consistency of the hierarchical proxy's levels against the full validation set
    cons = {}
    rep = Repair(space, dev, budgets[-1])
    r = random.Random("levels")
    nets = [[r.randrange(len(ch)) for ch in rep.choices] for _ in range(40)]
    cfg = EvolveConfig()
    full = [_score(supernet, g, rep, data, cfg, 1.0, Costs(), 0) for g in nets]
    for share in (0.25, 0.5):
        part = [_score(supernet, g, rep, data, cfg, share, Costs(), 0) for g in nets]
        cons[str(share)] = kendall(part, full)
    summary = {"run": str(run), "budgets": budgets, "rows": rows,
               "level_rank_consistency_tau": cons,
               "settings": vars(args)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({"level_tau": cons}))


if __name__ == "__main__":
    main()
