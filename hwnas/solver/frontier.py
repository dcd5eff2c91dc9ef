"""The solver's front door: :func:`frontier`, the whole exact frontier in one pass; every
budget is then a lookup on it.

``frontier(acc, dev).best(budget_ms)`` is the most accurate architecture within a budget,
``.fastest(min_score)`` the fastest reaching a score floor, ``.points()`` every
Pareto-optimal (latency, score, architecture). Ties: highest objective, then lowest
latency, then smallest candidate indices (order of ``space.layers[l].choices``) among
partial solutions with identical figures, so the answer never depends on call order.

A frontier is also a file (kind ``hwnas.frontier``): :meth:`Frontier.to_dict` writes it
and :func:`read_frontier` reads it back, for ``hwnas search --frontier`` and ``hwnas run``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from hwnas_profilers.fileformat import KINDS, number

from ..arch import Architecture
from ..errors import TableError
from ..fileio import check_header, read_json, write_json_atomic
from ..tables.accuracy import AccuracyTable
from ..tables.device import DeviceTable
from .knapsack import ParetoSet, pareto_frontier
from .problem import Problem, SolverError, build_problem, check_budget, tolerance

FRONTIER_KIND = "hwnas.frontier"


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
    """The exact frontier of one problem, sorted by latency (objective strictly rising).

    ``budget_ms``, when set, is the latency the frontier was cut at: points slower than it
    were pruned while merging, so lookups beyond it are refused.
    """

    problem: Problem
    pareto: ParetoSet
    budget_ms: float | None = None

    @classmethod
    def of(cls, problem: Problem, budget_ms: float | None = None) -> "Frontier":
        """The exact frontier of a built problem (optionally only up to ``budget_ms``)."""
        cols, caps, _ = problem.resource_columns()
        if budget_ms is not None:
            budget_ms = check_budget(budget_ms)
        # the cap only prunes; the budget itself is applied on real figures by the lookups
        cap = None if budget_ms is None else \
            (budget_ms - problem.const_ms + 2 * tolerance(budget_ms)) / problem.latency.quantum
        return cls(problem, pareto_frontier(problem.costs, problem.scores, cols, caps,
                                            latency_cap=cap), budget_ms)

    @property
    def latency_ms(self) -> np.ndarray:
        """Each frontier point's predicted latency, ascending."""
        return self.problem.latency.value(self.pareto.latency, self.problem.const_ms)

    @property
    def objective(self) -> np.ndarray:
        """Each frontier point's objective (summed score, or negated loss)."""
        return self.problem.objective_q.value(self.pareto.score)

    def __len__(self) -> int:
        return len(self.pareto)

    def fastest_ms(self) -> float:
        """The fastest point's latency (raises when the frontier is empty)."""
        if not len(self):
            raise SolverError(self._infeasible("the limits"))
        return float(self.latency_ms[0])

    # ------------------------------------------------------------------ lookups
    def best(self, budget_ms: float, margin: float = 0.0) -> Architecture:
        """The architecture of highest objective within ``budget_ms``; with ``margin`` (a
        share, e.g. ``DeviceTable.margin()[0]``) within ``budget_ms / (1 + margin)``, so a
        prediction error of that size still meets the budget when measured."""
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or \
                not 0 <= margin < 1:
            raise SolverError(f"a budget margin is a share in [0, 1), got {margin!r}")
        i = self.index_for_budget(float(check_budget(budget_ms)) / (1.0 + margin))
        arch = self._pick(i, "budget_ms", float(budget_ms))
        return replace(arch, extra=arch.extra + (("margin", float(margin)),)) if margin else arch

    def fastest(self, min_score: float) -> Architecture:
        """The fastest architecture whose summed raw score reaches ``min_score`` (within
        the frontier's own ``budget_ms``, if it was cut at one)."""
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float, np.number)):
            raise SolverError(f"a score floor must be a number, got {min_score!r}")
        return self._pick(self.index_for_floor(float(min_score), self.budget_ms), "min_score",
                          float(min_score))

    def _pick(self, i: int, key: str, target: float) -> Architecture:
        arch = self.architectures([i])[0]
        return replace(arch, extra=arch.extra + ((key, target),))

    def index_for_budget(self, budget_ms: float) -> int:
        """Frontier index of the best point within ``budget_ms``; raises when none is."""
        budget_ms = check_budget(budget_ms)
        if self.budget_ms is not None and budget_ms > self.budget_ms:
            raise SolverError(f"this frontier was cut at {self.budget_ms:g} ms; a budget of "
                              f"{budget_ms:g} ms needs a frontier cut later (or not at all)")
        lat = self.latency_ms
        i = int(np.searchsorted(lat, budget_ms + tolerance(budget_ms), side="right")) - 1
        if i < 0:
            raise SolverError(self._infeasible(f"a latency budget of {budget_ms:g} ms"))
        return i

    def index_for_floor(self, min_score: float, budget_ms: float | None = None) -> int:
        """Frontier index of the fastest point whose raw score reaches ``min_score``."""
        if budget_ms is not None and not len(self):
            raise SolverError(self._infeasible(f"{budget_ms:g} ms"))
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
        whole = self if len(self) or self.budget_ms is None else Frontier.of(self.problem)
        return self.problem.infeasible(what, float(whole.latency_ms[0]) if len(whole) else None)

    # ------------------------------------------------------------------ views
    def architectures(self, indices: Sequence[int] | None = None) -> list[Architecture]:
        """Architectures (with latency, score, MACs, params) at frontier ``indices``."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        return self.problem.architectures(self.pareto.choices[idx])

    def points(self) -> list[FrontierPoint]:
        """Every frontier point with its latency, objective and architecture."""
        archs = self.architectures()
        return [FrontierPoint(float(l), float(s), a)
                for l, s, a in zip(self.latency_ms, self.objective, archs)]

    def to_dict(self, annotate: Callable[[FrontierPoint], Mapping[str, Any]] | None = None
                ) -> dict[str, Any]:
        """The frontier file: header, problem, and per point its figures and choices;
        ``annotate(point)`` adds fields to each point (a predicted accuracy, say)."""
        problem = self.problem
        points = []
        for p in self.points():
            a = p.architecture
            points.append({"latency_ms": p.latency_ms, "score": a.score, "objective": p.score,
                           "macs": a.macs, "params": a.params, "choices": list(a.choices),
                           **(annotate(p) if annotate else {})})
        return {"schema": KINDS[FRONTIER_KIND], "kind": FRONTIER_KIND,
                "space": problem.space.name, "space_id": problem.space_id,
                "objective": problem.objective, "limits": problem.limits.active(),
                "points": points}

    def save(self, path: "str | Path",
             annotate: Callable[[FrontierPoint], Mapping[str, Any]] | None = None) -> Path:
        """Write the JSON form atomically; returns the path."""
        return write_json_atomic(path, self.to_dict(annotate))


def read_frontier(path: "str | Path") -> dict[str, Any]:
    """A frontier file, its header and points checked (each point's figures numbers, its
    choices strings); the decoded document."""
    source = f"frontier {path}"
    d = read_json(path, "frontier")
    if isinstance(d, list):  # a run folder from before frontier files had a header
        d = {"schema": KINDS[FRONTIER_KIND], "kind": FRONTIER_KIND, "points": d}
    check_header(d, FRONTIER_KIND, KINDS[FRONTIER_KIND], source, "frontier")
    pts = d.get("points")
    if not isinstance(pts, list):
        raise TableError(f"{source}: 'points' must be a list")
    for i, p in enumerate(pts):
        if not isinstance(p, Mapping) or not isinstance(p.get("choices"), list) \
                or not all(isinstance(c, str) for c in p["choices"]):
            raise TableError(f"{source}: point {i} needs 'choices', a list of strings")
        for k in ("latency_ms", "score"):
            number(p.get(k), f"{source}: point {i} {k}", -1e15, 1e15, error=TableError)
    return d


def frontier(accuracy_table: AccuracyTable, device_table: DeviceTable, *,
             objective: str = "accuracy", budget_ms: float | None = None,
             **limits: Any) -> Frontier:
    """The exact accuracy-latency frontier of the tables under the limits.

    ``objective``: ``accuracy`` (summed score), ``loss`` (least summed relative accuracy
    loss, PONAS) or ``latency`` (the accuracy frontier, looked up by score floor with
    :meth:`Frontier.fastest`). ``limits`` are ``max_params``, ``max_macs``, ``max_memory``;
    any other name is an error. ``budget_ms`` cuts the frontier there, which prunes the
    search (quicker when one budget is all that is asked).
    """
    return Frontier.of(build_problem(accuracy_table, device_table, objective, limits), budget_ms)
