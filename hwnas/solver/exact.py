"""Exact search: the whole frontier in one pass, then every budget is a lookup.

``frontier`` returns every Pareto-optimal (latency, score) point with its architecture;
``solve`` picks the optimum for one budget (or accuracy floor); ``solve_many`` answers
many budgets from one frontier. Ties: highest objective, then lowest latency, then
smallest candidate indices (order of ``space.layers[l].choices``) among partial
solutions with identical figures, so the answer never depends on call order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Sequence

import numpy as np

from ..arch import Architecture
from ..tables.accuracy import AccuracyTable
from ..tables.device import DeviceTable
from .pareto import ParetoSet, pareto_frontier
from .problem import Problem, SolverError, build_problem, tolerance


class FrontierPoint(NamedTuple):
    """One Pareto-optimal point: predicted latency, objective score, the architecture.

    ``score`` is the summed accuracy-table score; for the ``loss`` objective it is minus
    the summed relative accuracy loss (0 = the best block at every layer).
    """

    latency_ms: float
    score: float
    architecture: Architecture


@dataclass(frozen=True, eq=False)
class Frontier:
    """The exact frontier of one problem, sorted by latency (objective strictly rising)."""

    problem: Problem
    pareto: ParetoSet

    @property
    def latency_ms(self) -> np.ndarray:
        return self.problem.latency.value(self.pareto.latency, self.problem.const_ms)

    @property
    def objective(self) -> np.ndarray:
        return self.problem.objective_q.value(self.pareto.score)

    def __len__(self) -> int:
        return len(self.pareto)

    def fastest_ms(self) -> float:
        if not len(self):
            raise SolverError("no architecture meets the limits")
        return float(self.latency_ms[0])

    def index_for_budget(self, budget_ms: float) -> int:
        """Frontier index of the best point within ``budget_ms``; raises when none is."""
        if not np.isfinite(budget_ms) or budget_ms <= 0:
            raise SolverError(f"latency budget must be a positive number of ms, got {budget_ms!r}")
        lat = self.latency_ms
        i = int(np.searchsorted(lat, budget_ms + tolerance(budget_ms), side="right")) - 1
        if i < 0:
            raise SolverError(self._infeasible(f"a latency budget of {budget_ms:g} ms"))
        return i

    def index_for_floor(self, min_score: float, budget_ms: float | None = None) -> int:
        """Frontier index of the fastest point whose raw score reaches ``min_score``."""
        raw = self.problem.figures(self.pareto.choices)["score"] if len(self) else np.empty(0)
        ok = raw >= min_score - tolerance(min_score)
        if budget_ms is not None:
            ok &= self.latency_ms <= budget_ms + tolerance(budget_ms)
        hits = np.nonzero(ok)[0]
        if hits.shape[0] == 0:
            best = float(raw.max()) if raw.shape[0] else float("nan")
            within = f" within {budget_ms:g} ms" if budget_ms is not None else ""
            raise SolverError(f"no architecture reaches score {min_score:g}{within}; the best "
                              f"score reachable is {best:.6g}")
        # raw score need not rise along a frontier of another objective: take the fastest
        return int(hits[0])

    def _infeasible(self, what: str) -> str:
        lim = self.problem.limits.active()
        under = (" under " + ", ".join(f"{k} {v:g}" for k, v in lim.items())) if lim else ""
        if not len(self):
            return f"no architecture meets {what}{under}"
        return (f"no architecture meets {what}{under}; the smallest latency any "
                f"architecture reaches is {self.fastest_ms():.6g} ms")

    def architectures(self, indices: Sequence[int] | None = None) -> list[Architecture]:
        """Architectures (with latency, score, FLOPs, params) at frontier ``indices``."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        rows = self.pareto.choices[idx]
        fig = self.problem.figures(rows) if rows.shape[0] else None
        space = self.problem.space
        names = [layer.choices for layer in space.layers]
        out = []
        for r, row in enumerate(rows):
            choices = tuple(names[l][c] for l, c in enumerate(row.tolist()))
            out.append(Architecture(
                self.problem.space_id, choices, space.name, latency_ms=float(fig["latency_ms"][r]),
                score=float(fig["score"][r]), flops=int(fig["flops"][r]),
                params=int(fig["params"][r]),
                extra=(("objective", self.problem.objective),
                       ("relative_loss", float(fig["relative_loss"][r])))))
        return out

    def points(self) -> list[FrontierPoint]:
        archs = self.architectures()
        return [FrontierPoint(float(l), float(s), a)
                for l, s, a in zip(self.latency_ms, self.objective, archs)]


def compute_frontier(problem: Problem, budget_ms: float | None = None) -> Frontier:
    """The exact frontier of a built problem (optionally only up to ``budget_ms``)."""
    cols, caps, _ = problem.resource_columns()
    # the cap only prunes; the budget itself is applied on real figures by the lookups
    cap = None if budget_ms is None else \
        (budget_ms - problem.const_ms + 2 * tolerance(budget_ms)) / problem.latency.quantum
    pareto = pareto_frontier(problem.costs, problem.scores, cols, caps, latency_cap=cap)
    return Frontier(problem, pareto)


def build_frontier(accuracy_table: AccuracyTable, device_table: DeviceTable, *,
                   objective: str = "accuracy", **limits: Any) -> Frontier:
    """The :class:`Frontier` object (array form) for the tables and limits."""
    return compute_frontier(build_problem(accuracy_table, device_table, objective, limits))


def frontier(accuracy_table: AccuracyTable, device_table: DeviceTable, *,
             objective: str = "accuracy", budget_ms: float | None = None,
             **limits: Any) -> list[FrontierPoint]:
    """Every Pareto-optimal (latency, score, architecture), fastest first.

    ``limits`` are ``max_params``, ``max_flops``, ``max_memory``; any other name is an
    error. ``budget_ms`` optionally drops points slower than it.
    """
    problem = build_problem(accuracy_table, device_table, objective, limits)
    return compute_frontier(problem, budget_ms).points()


def solve(accuracy_table: AccuracyTable, device_table: DeviceTable,
          budget_ms: float | None = None, *, objective: str = "accuracy",
          min_score: float | None = None, **limits: Any) -> Architecture:
    """The optimal architecture for one budget.

    ``objective``: ``accuracy`` (highest summed score within ``budget_ms``), ``loss``
    (least summed relative accuracy loss within ``budget_ms``, PONAS) or ``latency``
    (lowest latency whose summed score reaches ``min_score``; ``budget_ms`` optional).
    """
    return solve_many(accuracy_table, device_table,
                      [budget_ms] if objective != "latency" else [min_score],
                      objective=objective, budget_ms=budget_ms if objective == "latency" else None,
                      **limits)[0]


def solve_many(accuracy_table: AccuracyTable, device_table: DeviceTable,
               targets: Sequence[float | None], *, objective: str = "accuracy",
               budget_ms: float | None = None, **limits: Any) -> list[Architecture]:
    """One optimal architecture per target, all from one frontier.

    Targets are latency budgets in ms, or score floors for the ``latency`` objective
    (then ``budget_ms`` is an optional cap shared by all).
    """
    problem = build_problem(accuracy_table, device_table, objective, limits)
    if objective == "latency":
        if any(t is None for t in targets):
            raise SolverError("the latency objective needs a score floor (min_score)")
        front = compute_frontier(problem, budget_ms)
        if budget_ms is not None and not len(front):
            raise SolverError(compute_frontier(problem)._infeasible(f"{budget_ms:g} ms"))
        idx = [front.index_for_floor(float(t), budget_ms)  # type: ignore[arg-type]
               for t in targets]
    else:
        if any(t is None for t in targets):
            raise SolverError(f"the {objective} objective needs a latency budget (budget_ms)")
        # one budget: prune by it while merging; several: one whole frontier serves all
        cap = float(targets[0]) if len(targets) == 1 else None  # type: ignore[arg-type]
        front = compute_frontier(problem, cap)
        if not len(front) and len(targets) == 1:
            front = compute_frontier(problem)  # for the message: the fastest reachable
        idx = [front.index_for_budget(float(t)) for t in targets]  # type: ignore[arg-type]
    key = "min_score" if objective == "latency" else "budget_ms"
    return [replace(a, extra=a.extra + ((key, t),))
            for a, t in zip(front.architectures(idx), targets)]
