"""The knapsack instance: per layer and candidate its latency, score and resources.

Built from an accuracy table and a device table (the device table's end-to-end model,
fixed parts included, so a solution's latency equals ``DeviceTable.predict``). Every
check on bad input lives here, so the solver and the searchers share one set of rules
and one set of messages.

Limits:

- ``max_params``: parameters of the whole network (stem, fixed blocks and head included);
- ``max_macs``: multiply-accumulates of one forward pass at batch 1, whole network;
- ``max_memory``: peak live activation *elements* of any one block (multiply by the bytes
  per element for bytes). A peak is a maximum, not a sum, so it is applied exactly as a
  filter on candidates rather than as a knapsack dimension.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..arch import Architecture
from ..errors import UserError
from ..spaces import SearchSpace
from ..tables.accuracy import AccuracyTable
from ..tables.device import DeviceTable

OBJECTIVES = ("accuracy", "latency", "loss")
LIMITS = ("max_params", "max_macs", "max_memory")


class SolverError(UserError):
    """The search cannot run on this input, or nothing meets the budget and limits."""


@dataclass(frozen=True)
class Limits:
    """Extra limits besides latency; ``None`` means unlimited."""

    max_params: float | None = None
    max_macs: float | None = None
    max_memory: float | None = None

    @classmethod
    def from_kwargs(cls, limits: Mapping[str, Any]) -> "Limits":
        """Validate limit keywords by name and value; a typo is an error, never ignored."""
        values: dict[str, float | None] = {}
        for name, val in limits.items():
            if name not in LIMITS:
                near = difflib.get_close_matches(name, LIMITS, n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise SolverError(f"unknown limit {name!r}{hint}; known limits: "
                                  f"{', '.join(LIMITS)}")
            if val is None:
                values[name] = None
                continue
            if isinstance(val, bool) or not isinstance(val, (int, float)) \
                    or not math.isfinite(val) or val <= 0:
                raise SolverError(f"limit {name} must be a positive finite number, got {val!r}")
            values[name] = float(val)
        return cls(**values)

    def active(self) -> dict[str, float]:
        """The limits that are set, by name."""
        return {n: v for n in LIMITS if (v := getattr(self, n)) is not None}


# Figures are summed as integers in units of a power-of-two quantum ~2**-40 of the
# largest magnitude (a relative 1e-12): integer-valued float64 sums below 2**53 are exact,
# so a total no longer depends on the order of summation and equal figures really tie.
_BITS = 40


@dataclass(frozen=True, eq=False)
class Quantised:
    """Per-layer figures as integer multiples of ``quantum`` (``inf`` kept as is)."""

    units: tuple[np.ndarray, ...]
    quantum: float

    @classmethod
    def of(cls, arrays: list[np.ndarray]) -> "Quantised":
        """Integer units of a list of per-layer arrays, on one common quantum."""
        finite = [np.abs(a[np.isfinite(a)]) for a in arrays]
        top = max((float(f.max()) for f in finite if f.size), default=0.0)
        quantum = 2.0 ** (math.frexp(top)[1] - _BITS) if top > 0 else 1.0
        return cls(tuple(np.round(np.asarray(a, dtype=float) / quantum) for a in arrays), quantum)

    def value(self, units: np.ndarray, start: float = 0.0) -> np.ndarray:
        """Real figures of unit totals: one formula for the solver and for reports."""
        return start + self.quantum * units

    def total(self, idx: np.ndarray, start: float = 0.0) -> np.ndarray:
        """Real totals of the chosen indices, from ``start``."""
        acc = np.zeros(idx.shape[0])
        for l, arr in enumerate(self.units):
            acc = acc + arr[idx[:, l]]
        return self.value(acc, start)


@dataclass(frozen=True, eq=False)
class Problem:
    """Arrays aligned with ``space.layers[l].choices``; ``inf`` latency = never chosen.

    ``latency`` (ms beyond ``const_ms``) and ``objective`` (what is maximised: raw
    scores, or minus the relative loss for ``loss``) are quantised (see ``Quantised``);
    ``raw`` and ``loss`` are kept for reporting.
    """

    space: SearchSpace
    space_id: str  # cached: SearchSpace.id hashes every block key on each call
    objective: str
    limits: Limits
    const_ms: float
    latency: Quantised
    objective_q: Quantised
    raw: Quantised
    loss: Quantised
    params: tuple[np.ndarray, ...]
    macs: tuple[np.ndarray, ...]
    fixed_params: int
    fixed_macs: int

    @property
    def n_layers(self) -> int:
        """The number of searchable layers."""
        return len(self.latency.units)

    @property
    def costs(self) -> tuple[np.ndarray, ...]:
        """Latency units per layer and candidate (``inf``: never chosen)."""
        return self.latency.units

    @property
    def scores(self) -> tuple[np.ndarray, ...]:
        """Objective units per layer and candidate (higher is better)."""
        return self.objective_q.units

    def resource_columns(self) -> tuple[list[np.ndarray], list[float], list[str]]:
        """Per layer an (candidates, d) array of the limited additive resources, the d
        caps left once the fixed blocks are paid for, and their names."""
        names, cols, caps = [], [], []
        if self.limits.max_params is not None:
            names.append("max_params")
            cols.append(self.params)
            caps.append(self.limits.max_params - self.fixed_params)
        if self.limits.max_macs is not None:
            names.append("max_macs")
            cols.append(self.macs)
            caps.append(self.limits.max_macs - self.fixed_macs)
        per_layer = [np.stack([c[l] for c in cols], axis=1).astype(float) if cols
                     else np.zeros((len(self.costs[l]), 0)) for l in range(self.n_layers)]
        return per_layer, caps, names

    def figures(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Exact figures of solutions given as candidate indices (rows x layers)."""
        idx = np.atleast_2d(idx)

        def count(arrays: tuple[np.ndarray, ...], start: int) -> np.ndarray:
            acc = np.full(idx.shape[0], start, dtype=np.int64)
            for l, arr in enumerate(arrays):
                acc = acc + arr[idx[:, l]]
            return acc
        return {"latency_ms": self.latency.total(idx, self.const_ms),
                "score": self.raw.total(idx), "objective": self.objective_q.total(idx),
                "relative_loss": self.loss.total(idx),
                "params": count(self.params, self.fixed_params),
                "macs": count(self.macs, self.fixed_macs)}

    def architectures(self, idx: np.ndarray, extra: tuple[tuple[str, Any], ...] = ()
                      ) -> list[Architecture]:
        """Architectures, with their figures, of solutions given as candidate indices: the
        one conversion every searcher uses."""
        idx = np.atleast_2d(idx)
        if not idx.shape[0]:
            return []
        fig = self.figures(idx)
        names = [layer.choices for layer in self.space.layers]
        return [Architecture(
            self.space_id, tuple(names[l][c] for l, c in enumerate(row.tolist())),
            self.space.name, latency_ms=float(fig["latency_ms"][r]), score=float(fig["score"][r]),
            macs=int(fig["macs"][r]), params=int(fig["params"][r]),
            extra=(("objective", self.objective),) + extra
            + (("relative_loss", float(fig["relative_loss"][r])),))
            for r, row in enumerate(idx)]

    def fastest_ms(self) -> float:
        """The least latency of any architecture, ignoring the extra limits."""
        least = np.asarray(sum(float(c[np.isfinite(c)].min()) for c in self.costs))
        return float(self.latency.value(least, self.const_ms))

    def infeasible(self, what: str, fastest_ms: float | None) -> str:
        """The message for a budget nothing meets, naming the smallest reachable latency."""
        lim = self.limits.active()
        under = (" under " + ", ".join(f"{k} {v:g}" for k, v in lim.items())) if lim else ""
        if fastest_ms is None:
            return f"no architecture meets {what}{under}"
        return (f"no architecture meets {what}{under}; the smallest latency any "
                f"architecture reaches is {fastest_ms:.6g} ms")

    def feasible(self, idx: np.ndarray, budget_ms: float | None) -> np.ndarray:
        """Which rows of candidate indices meet the latency budget and every limit."""
        f = self.figures(idx)
        ok = np.isfinite(f["latency_ms"])
        if budget_ms is not None:
            ok &= f["latency_ms"] <= budget_ms + tolerance(budget_ms)
        if self.limits.max_params is not None:
            ok &= f["params"] <= self.limits.max_params
        if self.limits.max_macs is not None:
            ok &= f["macs"] <= self.limits.max_macs
        return ok


def check_budget(budget_ms: Any) -> float:
    """A latency budget as a float; anything but a positive finite number is an error."""
    if isinstance(budget_ms, bool) or not isinstance(budget_ms, (int, float, np.number)) \
            or not math.isfinite(budget_ms) or budget_ms <= 0:
        raise SolverError(f"latency budget must be a positive number of ms, got {budget_ms!r}")
    return float(budget_ms)


def tolerance(ms: float) -> float:
    """Slack for comparing a float sum with a budget: summation order differs by ulps."""
    return 1e-9 * max(1.0, abs(ms))


def _check_latencies(space: SearchSpace, table: DeviceTable) -> None:
    for b in space.unique_blocks():
        stat = table.entries.get(b.key())
        if stat is None or not stat.ok:
            continue  # missing: layer_costs raises the table's own error; failed: inf
        med = stat.value(table.figure_field)
        if med is None or not math.isfinite(med) or med < 0:
            raise SolverError(f"device table latency of block {b.key()} is {med!r}; latencies "
                              "must be finite and >= 0")
    cal = table.calibration
    if not (math.isfinite(cal.scale) and math.isfinite(cal.offset_ms) and cal.scale > 0
            and math.isfinite(table.overhead_ms) and table.overhead_ms >= 0):
        raise SolverError("device table calibration/overhead must be finite (scale > 0, "
                          "overhead >= 0)")


def build_problem(accuracy: AccuracyTable, device: DeviceTable, objective: str = "accuracy",
                  limits: Mapping[str, Any] | Limits | None = None) -> Problem:
    """Validate the inputs and lay them out as arrays; raises ``UserError`` on bad input."""
    if objective not in OBJECTIVES:
        raise SolverError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    lim = limits if isinstance(limits, Limits) else Limits.from_kwargs(dict(limits or {}))
    space = accuracy.space
    # a device table serves any space whose blocks it holds (a shrunk space, say);
    # lacking one, layer_costs raises the table's own error naming the block
    _check_latencies(space, device)
    const, costs = device.layer_costs(space)  # raises its TableError for missing blocks
    raw = accuracy.matrix()
    best = [float(r.max()) for r in raw]
    loss = [(b - r) / b if b else np.zeros_like(r) for r, b in zip(raw, best)]
    params = [np.asarray([b.params() for b in layer.candidates], dtype=np.int64)
              for layer in space.layers]
    macs = [np.asarray([b.macs() for b in layer.candidates], dtype=np.int64)
             for layer in space.layers]
    fixed = space.fixed_blocks()
    if lim.max_memory is not None:
        worst = max(fixed, key=lambda b: b.activation_elems())
        if worst.activation_elems() > lim.max_memory:
            raise SolverError(f"max_memory {lim.max_memory:g} is below the peak activation of "
                              f"fixed block {worst.key()} ({worst.activation_elems()} elements)")
        costs = [np.where([b.activation_elems() <= lim.max_memory for b in layer.candidates],
                          c, math.inf) for c, layer in zip(costs, space.layers)]
    for i, c in enumerate(costs):
        if not np.isfinite(c).any():
            why = (" within max_memory" if lim.max_memory is not None
                   else " (all failed on the device)")
            raise SolverError(f"layer {i} has no feasible candidate{why}; candidates: "
                              f"{', '.join(space.layers[i].choices)}")
    raw_q, loss_q = Quantised.of(raw), Quantised.of(loss)
    obj_q = Quantised(tuple(-u for u in loss_q.units), loss_q.quantum) if objective == "loss" \
        else raw_q
    problem = Problem(space, space.id, objective, lim, float(const), Quantised.of(costs), obj_q,
                      raw_q, loss_q, tuple(params), tuple(macs),
                      sum(b.params() for b in fixed), sum(b.macs() for b in fixed))
    _check_limits_reachable(problem)
    return problem


def _check_limits_reachable(p: Problem) -> None:
    for name, arrays, fixed in (("max_params", p.params, p.fixed_params),
                                ("max_macs", p.macs, p.fixed_macs)):
        cap = getattr(p.limits, name)
        if cap is None:
            continue
        least = fixed + sum(int(a[np.isfinite(c)].min()) for a, c in zip(arrays, p.costs))
        if least > cap:
            raise SolverError(f"{name} {cap:g} is unreachable: the smallest architecture "
                              f"needs {least}")
