"""Solver benchmark: exact frontier time, many budgets, optimality against a MILP, and the
evolutionary / random baselines' gap to the optimum and their time.

Tables are generated (seeded, latency ~ MACs with noise, score ~ log MACs with noise):
the figures measure the solver, not a device. Run: ``python benchmarks/solver_bench.py``
(``--quick`` for fewer repeats). Needs scipy for the MILP check.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_solver_exact import milp_optimum
from solver_tables import make_tables, small_space

from hwnas.solver import (Frontier, SolverError, build_problem, evolutionary_search,
                          frontier, random_search)


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time in ms over ``repeats`` calls, and the last result."""
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


def bench_exact(space: str, repeats: int) -> None:
    acc, dev = make_tables(space, 0)
    ms, pts = timed(lambda: frontier(acc, dev).points(), repeats)
    problem = build_problem(acc, dev)
    core_ms, _ = timed(lambda: Frontier.of(problem), repeats)
    front = frontier(acc, dev)
    budgets = list(np.linspace(front.fastest_ms(), float(front.latency_ms[-1]), 100))
    many_ms, _ = timed(lambda: [frontier(acc, dev).best(b) for b in budgets], repeats)
    one_ms, _ = timed(lambda: frontier(acc, dev, budget_ms=budgets[50]).best(budgets[50]),
                      repeats)
    n = len(acc.space.layers)
    k = max(len(layer.choices) for layer in acc.space.layers)
    print(f"{space} ({n} layers, {k} candidates, {acc.space.size():.3g} architectures): "
          f"frontier {len(pts)} points in {ms:.1f} ms (tables to architectures; DP alone "
          f"{core_ms:.1f} ms); 100 budgets {many_ms:.1f} ms; one budget {one_ms:.1f} ms")
    params = [a.params for a in front.architectures()]
    macs = [a.macs for a in front.architectures()]
    mp, mf = float(np.median(params)), float(np.median(macs))
    lim_ms, lim = timed(lambda: frontier(acc, dev, max_params=mp), max(1, repeats // 10))
    both_ms, both = timed(lambda: frontier(acc, dev, max_params=mp, max_macs=mf),
                          max(1, repeats // 10))
    mem_ms, _ = timed(lambda: frontier(acc, dev, max_memory=2_000_000), repeats)
    print(f"  with max_params (median of frontier): {len(lim)} points in {lim_ms:.0f} ms; "
          f"with max_params and max_macs: {len(both)} points in {both_ms:.0f} ms; "
          f"with max_memory (a filter): {mem_ms:.1f} ms")


def bench_optimality(instances: int) -> None:
    rng = np.random.default_rng(1)
    checked = agree = 0
    t_milp = t_ours = 0.0
    for i in range(instances):
        if i % 4 == 3:
            acc, dev = make_tables("proxyless-mobile", 1000 + i, integer=bool(i % 8 == 7))
        else:
            acc, dev = make_tables(small_space(int(rng.integers(3, 10)), skip=bool(i % 2)), i,
                                   integer=bool(i % 3 == 0))
        front = frontier(acc, dev)
        problem0 = build_problem(acc, dev)
        p_all = [problem0.fixed_params + sum(int(p.min()) for p in problem0.params),
                 problem0.fixed_params + sum(int(p.max()) for p in problem0.params)]
        for _ in range(3):
            budget = float(rng.uniform(front.fastest_ms(), float(front.latency_ms[-1])))
            limits = {} if rng.random() < 0.5 else {"max_params": float(rng.uniform(*p_all))}
            problem = build_problem(acc, dev, "accuracy", limits)
            t0 = time.perf_counter()
            ref = milp_optimum(problem, budget_ms=budget)
            t1 = time.perf_counter()
            try:
                got = frontier(acc, dev, budget_ms=budget, **limits).best(budget).score
            except Exception:  # noqa: BLE001 - infeasible: must agree with the MILP
                got = None
            t_ours += time.perf_counter() - t1
            t_milp += t1 - t0
            checked += 1
            agree += (ref is None and got is None) or (
                ref is not None and got is not None and abs(ref - got) <= 1e-7)
    print(f"optimality: {agree}/{checked} budgets agree with scipy MILP (HiGHS) across "
          f"{instances} random instances (ties, max_params); MILP {t_milp * 1e3 / checked:.1f} "
          f"ms per budget, exact solver {t_ours * 1e3 / checked:.1f} ms per budget")


def bench_baselines(seeds: int) -> None:
    acc, dev = make_tables("proxyless-mobile", 0)
    front = frontier(acc, dev)
    rows = []
    for q in (0.1, 0.6, 0.75, 0.9):
        budget = float(np.quantile(front.latency_ms, q))
        opt = front.best(budget).score
        for name, fn in (("evolution (P=100, 500 generations)",
                          lambda s, b=budget: evolutionary_search(acc, dev, b, seed=s)),
                         ("random (10000 samples)",
                          lambda s, b=budget: random_search(acc, dev, b, seed=s))):
            gaps, times, hits, failed = [], [], 0, 0
            for s in range(seeds):
                t0 = time.perf_counter()
                try:
                    res = fn(s)
                except SolverError:  # sampling never met the budget (bounded, then gives up)
                    failed += 1
                    continue
                times.append(time.perf_counter() - t0)
                gap = opt - res.architecture.score
                gaps.append(gap)
                hits += gap <= 1e-9
            rows.append((q, budget, name, gaps, hits, failed, statistics.median(times) if times else float("nan"), opt))
    for q, budget, name, gaps, hits, failed, t, opt in rows:
        gap = (f"gap to optimum {np.mean(gaps):.4f} mean / {np.max(gaps):.4f} worst"
               if gaps else "no result")
        print(f"  budget {budget:.2f} ms (frontier quantile {q}): {name}: {gap} (optimum "
              f"{opt:.4f}, summed score), optimal in {hits}/{seeds} seeds, no feasible "
              f"architecture found in {failed}/{seeds}, {t * 1e3:.0f} ms per finished search")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeats = 5 if args.quick else 30
    bench_exact("proxyless-mobile", repeats)
    bench_exact("ponas-224", repeats)
    bench_optimality(20 if args.quick else 100)
    print("baselines on proxyless-mobile:")
    bench_baselines(2 if args.quick else 5)


if __name__ == "__main__":
    main()
