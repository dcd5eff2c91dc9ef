"""The exact solver against an independent exact solver (scipy's MILP) and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from solver_tables import best_within, make_tables, small_space

from hwnas.arch import Architecture
from hwnas.solver import SolverError, build_problem, frontier

milp_mod = pytest.importorskip("scipy.optimize")


def milp_optimum(problem, budget_ms=None, min_score=None):
    """Independent reference: the same instance as a 0/1 integer program.

    Returns the optimal objective (max score, or min latency for a score floor) or None.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    sizes = [len(c) for c in problem.costs]
    n = sum(sizes)
    cost = np.concatenate(problem.costs) * problem.latency.quantum
    usable = np.isfinite(cost)
    cost = np.where(usable, cost, 0.0)
    score = np.concatenate(problem.scores) * problem.objective_q.quantum
    raw = np.concatenate(problem.raw.units) * problem.raw.quantum
    rows, lo, hi = [], [], []
    start = 0
    for k in sizes:  # one candidate per layer
        r = np.zeros(n)
        r[start:start + k] = 1
        rows.append(r), lo.append(1), hi.append(1)
        start += k
    if budget_ms is not None:
        rows.append(cost), lo.append(-np.inf), hi.append(budget_ms - problem.const_ms + 1e-9)
    if min_score is not None:
        rows.append(raw), lo.append(min_score - 1e-9), hi.append(np.inf)
    lim = problem.limits
    if lim.max_params is not None:
        rows.append(np.concatenate(problem.params).astype(float))
        lo.append(-np.inf), hi.append(lim.max_params - problem.fixed_params)
    if lim.max_macs is not None:
        rows.append(np.concatenate(problem.macs).astype(float))
        lo.append(-np.inf), hi.append(lim.max_macs - problem.fixed_macs)
    c = cost if min_score is not None else -score
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones(n),
               bounds=Bounds(np.zeros(n), usable.astype(float)),
               options={"mip_rel_gap": 0.0, "presolve": True})
    if res.status != 0:
        return None
    x = np.round(res.x).astype(bool)
    return float(cost[x].sum() + problem.const_ms) if min_score is not None else float(score[x].sum())


def check_budget(acc, dev, budget, objective="accuracy", **limits):
    problem = build_problem(acc, dev, objective, limits)
    ref = milp_optimum(problem, budget_ms=budget)
    if ref is None:
        with pytest.raises(SolverError, match="smallest latency|no architecture"):
            best_within(acc, dev, budget, objective=objective, **limits)
        return 0
    arch = best_within(acc, dev, budget, objective=objective, **limits)
    assert arch.latency_ms <= budget + 1e-9
    got = arch.score if objective == "accuracy" else -dict(arch.extra)["relative_loss"]
    assert got == pytest.approx(ref, abs=1e-7), (budget, limits)
    if limits.get("max_params") is not None:
        assert arch.params <= limits["max_params"]
    if limits.get("max_macs") is not None:
        assert arch.macs <= limits["max_macs"]
    return 1


def budgets_for(acc, dev, rng, count=4):
    front = frontier(acc, dev)
    lo, hi = front.fastest_ms(), float(front.latency_ms[-1])
    return [float(b) for b in rng.uniform(0.9 * lo, hi * 1.05, count)]


@pytest.mark.parametrize("seed", range(40))
def test_optimal_against_milp_real_valued(seed):
    rng = np.random.default_rng(seed)
    space = small_space(layers=int(rng.integers(3, 9)), skip=bool(seed % 2))
    acc, dev = make_tables(space, seed, overhead_ms=0.01 * (seed % 3), scale=1.0 + 0.1 * (seed % 4),
                           offset_ms=0.2 * (seed % 2))
    checked = sum(check_budget(acc, dev, b) for b in budgets_for(acc, dev, rng))
    assert checked >= 1


@pytest.mark.parametrize("seed", range(25))
def test_optimal_against_milp_with_ties(seed):
    rng = np.random.default_rng(100 + seed)
    space = small_space(layers=int(rng.integers(3, 8)))
    acc, dev = make_tables(space, seed, integer=True)
    for budget in rng.integers(1, 3 * len(space.layers) + 4, 4):
        check_budget(acc, dev, float(budget))


@pytest.mark.parametrize("seed", range(25))
def test_optimal_against_milp_with_extra_limits(seed):
    rng = np.random.default_rng(200 + seed)
    space = small_space(layers=int(rng.integers(3, 8)))
    acc, dev = make_tables(space, seed, integer=bool(seed % 2))
    problem = build_problem(acc, dev)
    p_lo = problem.fixed_params + sum(int(p.min()) for p in problem.params)
    p_hi = problem.fixed_params + sum(int(p.max()) for p in problem.params)
    f_lo = problem.fixed_macs + sum(int(f.min()) for f in problem.macs)
    f_hi = problem.fixed_macs + sum(int(f.max()) for f in problem.macs)
    for budget in budgets_for(acc, dev, rng, 3):
        mp = int(rng.uniform(p_lo, p_hi))
        mf = int(rng.uniform(f_lo, f_hi))
        check_budget(acc, dev, budget, max_params=mp)
        check_budget(acc, dev, budget, max_macs=mf)
        check_budget(acc, dev, budget, max_params=mp, max_macs=mf)


@pytest.mark.parametrize("seed", range(10))
def test_loss_and_latency_objectives_against_milp(seed):
    rng = np.random.default_rng(300 + seed)
    acc, dev = make_tables(small_space(layers=6), seed)
    for budget in budgets_for(acc, dev, rng, 3):
        check_budget(acc, dev, budget, objective="loss")
    problem = build_problem(acc, dev)
    lo = sum(float(s.min()) for s in acc.matrix())
    hi = sum(float(s.max()) for s in acc.matrix())
    for floor in rng.uniform(lo, hi, 3):
        ref = milp_optimum(problem, min_score=float(floor))
        arch = frontier(acc, dev, objective="latency").fastest(float(floor))
        assert arch.score >= floor - 1e-9
        assert arch.latency_ms == pytest.approx(ref, abs=1e-7)


def brute_force(acc, dev, **limits):
    problem = build_problem(acc, dev, "accuracy", limits)
    rows = np.array(list(itertools.product(*[range(len(c)) for c in problem.costs])))
    ok = problem.feasible(rows, None)
    f = problem.figures(rows[ok])
    return rows[ok], f["latency_ms"], f["score"]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("integer", [False, True])
def test_frontier_is_exactly_the_pareto_set(seed, integer):
    acc, dev = make_tables(small_space(layers=5), seed, integer=integer)
    _, lat, score = brute_force(acc, dev)
    pts = frontier(acc, dev).points()
    fl = np.array([p.latency_ms for p in pts])
    fs = np.array([p.score for p in pts])
    assert np.all(np.diff(fl) > 0) and np.all(np.diff(fs) > 0)
    # nothing beats a frontier point, and every non-dominated value is on the frontier
    for l, s in zip(fl, fs):
        assert not np.any((lat <= l + 1e-12) & (score > s + 1e-12))
        assert np.any(np.isclose(lat, l) & np.isclose(score, s))
    for l, s in zip(lat, score):
        if not np.any(((lat < l - 1e-12) & (score >= s - 1e-12))
                      | ((lat <= l + 1e-12) & (score > s + 1e-12))):
            assert np.any(np.isclose(fl, l) & np.isclose(fs, s))


def test_frontier_points_carry_consistent_figures():
    acc, dev = make_tables("proxyless-mobile", 3, overhead_ms=0.05, scale=1.1, offset_ms=0.3)
    space = acc.space
    pts = frontier(acc, dev).points()
    assert len(pts) > 10
    for lat, score, arch in pts[:: max(1, len(pts) // 15)]:
        a = Architecture.of(space, arch.choices)
        assert dev.predict(space, a).latency_ms == pytest.approx(lat, rel=1e-10)
        assert acc.total(arch.choices) == pytest.approx(score, abs=1e-9)
        assert (arch.latency_ms, arch.score) == (lat, score)
        assert arch.macs == a.total_macs(space) and arch.params == a.total_params(space)


def test_many_budgets_match_single_solves_and_are_monotone():
    acc, dev = make_tables("tiny-32", 4)
    front = frontier(acc, dev)
    budgets = list(np.linspace(front.fastest_ms(), float(front.latency_ms[-1]) + 1, 25))
    many = [front.best(b) for b in budgets]
    scores = [a.score for a in many]
    assert scores == sorted(scores)
    for b, a in zip(budgets[::6], many[::6]):
        assert best_within(acc, dev, b) == a


def test_ties_break_deterministically_to_first_candidates():
    space = small_space(layers=3)
    acc, dev = make_tables(space, 0, integer=True)
    flat_acc = type(acc).from_rows(space, [{c: 1.0 for c in layer.choices} for layer in space.layers])
    dev0 = type(dev)(dev.meta, {k: type(v)(1.0, 0.0, 1) for k, v in dev.entries.items()},
                     dev.space, dev.space_id)
    arch = best_within(flat_acc, dev0, 100.0)
    assert arch.choices == tuple(layer.choices[0] for layer in space.layers)
    assert [best_within(flat_acc, dev0, 100.0) for _ in range(3)] == [arch] * 3


def test_peak_memory_is_a_filter_not_a_sum():
    space = small_space(layers=4)
    acc, dev = make_tables(space, 7)
    elems = sorted({b.activation_elems() for layer in space.layers for b in layer.candidates})
    fixed_peak = max(b.activation_elems() for b in space.fixed_blocks())
    cap = max(elems[len(elems) // 2], fixed_peak)
    arch = best_within(acc, dev, 1e6, max_memory=cap)
    blocks = Architecture.of(space, arch.choices).blocks(space)
    assert max(b.activation_elems() for b in blocks) <= cap
    # the same as the unconstrained optimum of the space without the too-big candidates
    keep = [[b.choice() for b in layer.candidates if b.activation_elems() <= cap]
            for layer in space.layers]
    if all(keep):
        shrunk = space.shrink(keep)
        acc2 = type(acc).from_rows(shrunk, [{c: acc.score(i, c) for c in k}
                                            for i, k in enumerate(keep)])
        assert best_within(acc2, dev, 1e6).score == pytest.approx(arch.score)


def test_failed_blocks_are_never_chosen():
    space = small_space(layers=3)
    bad = space.layers[1].block("k5e6").key()
    acc, dev = make_tables(space, 1, failed=(bad,))
    for p in frontier(acc, dev).points():
        assert p.architecture.choices[1] != "k5e6"
    assert not math.isnan(best_within(acc, dev, 1e6).latency_ms)
