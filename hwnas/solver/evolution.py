"""Baselines sharing the exact solver's inputs: evolutionary search and random search.

The evolutionary search is once-for-all's (Cai et al., ICLR 2020, ``EvolutionFinder``):
a population of feasible architectures; each generation keeps the best ``parent_ratio``,
adds children by mutation (each layer resampled with ``mutate_prob``) and by uniform
crossover of two parents, and ranks by summed score. Unlike the original, the budget is
enforced by *bounded* rejection: a child is redrawn at most ``max_tries`` times and then
replaced by a copy of its parent, and the initial population stops sampling after
``population * max_tries`` draws, so an infeasible budget ends in an error, never in an
endless loop. Everything is drawn from one seeded generator, so a seed fixes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arch import Architecture
from ..tables.accuracy import AccuracyTable
from ..tables.device import DeviceTable
from .problem import Problem, SolverError, build_problem, check_budget


@dataclass(frozen=True)
class SearchResult:
    """Best architecture found, and how many architectures were drawn and evaluated."""

    architecture: Architecture
    samples: int
    evaluations: int


class _Sampler:
    """Draws candidate indices among the usable ones (finite latency) of each layer."""

    def __init__(self, problem: Problem, rng: np.random.Generator) -> None:
        self.allowed = [np.nonzero(np.isfinite(c))[0] for c in problem.costs]
        self.sizes = np.asarray([a.shape[0] for a in self.allowed])
        self.rng = rng
        self.drawn = 0

    def genes(self, rows: int) -> np.ndarray:
        self.drawn += rows
        pick = (self.rng.random((rows, len(self.allowed))) * self.sizes).astype(np.int64)
        return np.stack([a[pick[:, l]] for l, a in enumerate(self.allowed)], axis=1)


def _check_budget(problem: Problem, budget_ms: float) -> None:
    fastest = problem.fastest_ms()
    if fastest > check_budget(budget_ms):
        raise SolverError(problem.infeasible(f"a latency budget of {budget_ms:g} ms", fastest))


def _draw_feasible(problem: Problem, sampler: _Sampler, budget_ms: float, count: int,
                   max_draws: int) -> np.ndarray:
    found: list[np.ndarray] = []
    have = 0
    while have < count and sampler.drawn < max_draws:
        batch = sampler.genes(min(max(count - have, 16) * 4, max_draws - sampler.drawn))
        ok = batch[problem.feasible(batch, budget_ms)]
        found.append(ok)
        have += ok.shape[0]
    rows = np.concatenate(found) if found else np.empty((0, problem.n_layers), dtype=np.int64)
    if rows.shape[0] == 0:
        raise SolverError(f"no architecture within {budget_ms:g} ms and the limits was found "
                          f"in {sampler.drawn} random draws; the budget is too tight for "
                          "sampling (the exact solver finds the optimum if one exists)")
    return rows[:count]


def _best(problem: Problem, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted best first: objective descending, then latency, then indices."""
    f = problem.figures(rows)
    keys = [rows[:, l] for l in range(rows.shape[1] - 1, -1, -1)] + [f["latency_ms"],
                                                                       -f["objective"]]
    order = np.lexsort(keys)
    return rows[order], f["objective"][order]


def _children(problem: Problem, sampler: _Sampler, parents: np.ndarray, n: int,
              budget_ms: float, max_tries: int, make) -> np.ndarray:
    """``n`` feasible children from ``make(first_parents)``, redrawn at most ``max_tries``
    times each; a child that never fits becomes a copy of its first parent."""
    base = parents[sampler.rng.integers(0, parents.shape[0], n)]
    out = base.copy()
    todo = np.arange(n)
    for _ in range(max_tries):
        if todo.shape[0] == 0:
            break
        kids = make(base[todo])
        ok = problem.feasible(kids, budget_ms)
        out[todo[ok]] = kids[ok]
        todo = todo[~ok]
    return out


def evolutionary_search(accuracy_table: AccuracyTable, device_table: DeviceTable,
                        budget_ms: float, *, objective: str = "accuracy", population: int = 100,
                        generations: int = 500, parent_ratio: float = 0.25,
                        mutation_ratio: float = 0.5, mutate_prob: float = 0.1,
                        max_tries: int = 100, seed: int = 0, **limits: Any) -> SearchResult:
    """Once-for-all's evolutionary search (defaults as in its ``EvolutionFinder``)."""
    problem = build_problem(accuracy_table, device_table, objective, limits)
    if objective == "latency":
        raise SolverError("evolutionary search supports the accuracy and loss objectives")
    _check_budget(problem, budget_ms)
    if population < 2 or generations < 0 or not 0 < parent_ratio <= 1 \
            or not 0 <= mutation_ratio <= 1 or not 0 <= mutate_prob <= 1 or max_tries < 1:
        raise SolverError("evolution settings out of range (population >= 2, ratios in [0, 1])")
    rng = np.random.default_rng(seed)
    sampler = _Sampler(problem, rng)
    pop = _draw_feasible(problem, sampler, budget_ms, population, population * max_tries)
    evaluations = pop.shape[0]
    n_parents = max(1, int(round(parent_ratio * population)))
    n_mut = int(round(mutation_ratio * population))
    n_cross = max(0, population - n_parents - n_mut)

    def mutate(rows: np.ndarray) -> np.ndarray:
        mask = rng.random(rows.shape) < mutate_prob
        return np.where(mask, sampler.genes(rows.shape[0]), rows)

    for _ in range(generations):
        pop, _score = _best(problem, pop)
        parents = pop[:n_parents]

        def cross(rows: np.ndarray, parents: np.ndarray = parents) -> np.ndarray:
            other = parents[rng.integers(0, parents.shape[0], rows.shape[0])]
            return np.where(rng.random(rows.shape) < 0.5, rows, other)

        kids_m = _children(problem, sampler, parents, n_mut, budget_ms, max_tries, mutate)
        kids_c = _children(problem, sampler, parents, n_cross, budget_ms, max_tries, cross)
        pop = np.concatenate([parents, kids_m, kids_c])
        evaluations += kids_m.shape[0] + kids_c.shape[0]
    pop, _score = _best(problem, pop)
    return SearchResult(problem.architectures(pop[:1], (("method", "evolution"),))[0], sampler.drawn, evaluations)


def random_search(accuracy_table: AccuracyTable, device_table: DeviceTable, budget_ms: float,
                  *, objective: str = "accuracy", samples: int = 10000, seed: int = 0,
                  **limits: Any) -> SearchResult:
    """Best of ``samples`` uniformly random architectures that meet the budget."""
    problem = build_problem(accuracy_table, device_table, objective, limits)
    if objective == "latency":
        raise SolverError("random search supports the accuracy and loss objectives")
    _check_budget(problem, budget_ms)
    if samples < 1:
        raise SolverError(f"random search needs samples >= 1, got {samples}")
    sampler = _Sampler(problem, np.random.default_rng(seed))
    rows = sampler.genes(samples)
    ok = rows[problem.feasible(rows, budget_ms)]
    if ok.shape[0] == 0:
        raise SolverError(f"none of {samples} random architectures meets {budget_ms:g} ms and "
                          "the limits (the exact solver finds the optimum if one exists)")
    best, _score = _best(problem, ok)
    return SearchResult(problem.architectures(best[:1], (("method", "random"),))[0], samples, samples)
