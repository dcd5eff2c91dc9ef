"""Bad input to the solver, and the evolutionary and random baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from solver_tables import best_within, make_tables, small_space

from hwnas.errors import TableError, UserError
from hwnas.solver import SolverError, evolutionary_search, frontier, random_search
from hwnas.tables.device import LatencyStat


def test_unknown_limit_is_a_clear_error():
    acc, dev = make_tables(small_space(3), 0)
    with pytest.raises(SolverError, match="unknown limit 'max_param' .did you mean max_params"):
        best_within(acc, dev, 10.0, max_param=5)
    with pytest.raises(SolverError, match="unknown limit"):
        frontier(acc, dev, budget=3)
    with pytest.raises(SolverError, match="positive finite"):
        best_within(acc, dev, 10.0, max_macs=float("nan"))
    with pytest.raises(SolverError, match="unknown objective"):
        best_within(acc, dev, 10.0, objective="acc")


def test_infeasible_budget_names_the_smallest_latency():
    acc, dev = make_tables(small_space(3), 0)
    fastest = frontier(acc, dev).fastest_ms()
    with pytest.raises(SolverError, match=f"smallest latency any architecture reaches is "
                       f"{fastest:.6g} ms"):
        best_within(acc, dev, fastest * 0.99)
    assert best_within(acc, dev, fastest).latency_ms == pytest.approx(fastest)
    with pytest.raises(SolverError, match="positive"):
        best_within(acc, dev, -1.0)


def test_tables_for_different_spaces():
    acc, _ = make_tables(small_space(3), 0)
    _, other = make_tables("tiny-32", 0)
    with pytest.raises(TableError, match="is for space tiny-32 .*, not small .*: it lacks"):
        best_within(acc, other, 10.0)


@pytest.mark.parametrize("bad", [float("nan"), -0.5])
def test_nan_or_negative_latency(bad):
    space = small_space(3)
    acc, dev = make_tables(space, 0)
    key = space.layers[0].candidates[0].key()
    dev = dev.with_entries({key: LatencyStat(bad, 0.0, 3)})
    with pytest.raises(SolverError, match=f"{key}.*finite and >= 0"):
        best_within(acc, dev, 10.0)


def test_layer_without_feasible_candidate():
    space = small_space(3, skip=False)
    failed = tuple(b.key() for b in space.layers[0].candidates)
    acc, dev = make_tables(space, 0, failed=failed)
    with pytest.raises(SolverError, match="layer 0 has no feasible candidate"):
        best_within(acc, dev, 10.0)
    acc, dev = make_tables(space, 0)
    fixed = max(b.activation_elems() for b in space.fixed_blocks())
    smallest = min(b.activation_elems() for b in space.layers[1].candidates)
    if smallest > fixed:
        with pytest.raises(SolverError, match="no feasible candidate within max_memory"):
            best_within(acc, dev, 10.0, max_memory=fixed)
    with pytest.raises(SolverError, match="max_params .* unreachable"):
        best_within(acc, dev, 10.0, max_params=10)


def test_all_errors_are_user_errors():
    assert issubclass(SolverError, UserError)


@pytest.mark.parametrize("seed", range(4))
def test_baselines_are_feasible_deterministic_and_never_beat_the_optimum(seed):
    acc, dev = make_tables("tiny-32", seed)
    front = frontier(acc, dev)
    budget = float(np.quantile(front.latency_ms, 0.4))
    best = best_within(acc, dev, budget)
    evo = evolutionary_search(acc, dev, budget, generations=30, population=40, seed=seed)
    rnd = random_search(acc, dev, budget, samples=2000, seed=seed)
    for r in (evo, rnd):
        a = r.architecture
        assert a.latency_ms <= budget + 1e-9
        assert a.score <= best.score + 1e-9
        assert acc.total(a.choices) == pytest.approx(a.score)
    assert evo == evolutionary_search(acc, dev, budget, generations=30, population=40, seed=seed)
    assert rnd == random_search(acc, dev, budget, samples=2000, seed=seed)


def test_baselines_respect_extra_limits():
    acc, dev = make_tables("tiny-32", 1)
    front = frontier(acc, dev)
    budget = float(front.latency_ms[-1])
    cap = int(np.median([a.params for a in front.architectures()]))
    exact = best_within(acc, dev, budget, max_params=cap)
    evo = evolutionary_search(acc, dev, budget, generations=20, max_params=cap).architecture
    assert evo.params <= cap and exact.params <= cap and evo.score <= exact.score + 1e-9


def test_baselines_end_on_an_infeasible_or_too_tight_budget():
    acc, dev = make_tables("proxyless-mobile", 0)
    fastest = frontier(acc, dev).fastest_ms()
    with pytest.raises(SolverError, match="smallest latency"):
        evolutionary_search(acc, dev, fastest * 0.9)
    # feasible, but practically never hit by uniform sampling: bounded, then an error
    with pytest.raises(SolverError, match="random draws"):
        evolutionary_search(acc, dev, fastest * 1.0001, population=10, max_tries=20)
    with pytest.raises(SolverError, match="none of 50"):
        random_search(acc, dev, fastest * 1.0001, samples=50)
    assert not math.isnan(fastest)
