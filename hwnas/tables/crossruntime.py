"""Two device tables of one space on different runtimes or devices: do they rank alike?

A table's absolute figures never carry over from one runtime to another (a phone's
TFLite and a server's ONNX Runtime differ by an order of magnitude); what a search needs
from a table is its *order*: which candidate of a layer is cheaper, and so which networks
end up on the accuracy-latency frontier. This module measures exactly that:

- **Kendall tau-b of block costs**: over every block both tables measured, and per layer
  over that layer's candidates (the order the knapsack compares), averaged over layers.
- **Frontier changes**: the exact frontier (:func:`hwnas.solver.frontier`) under each
  table, with one accuracy table (a real one, or, without one, each block's
  multiply-accumulates as a stand-in score: bigger blocks are the accurate ones), compared
  by membership (which networks are Pareto-optimal under both) and at budgets placed at
  the same relative position of each table's own latency range: the network each table
  picks, whether they agree, and what the network picked by A costs and scores under B.

The solver is imported inside :func:`frontier_changes` only (tables are loaded by the
solver; this is the one place a table question needs it).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .accuracy import AccuracyTable
from .device import DeviceTable

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of two paired samples (ties in either counted as tau-b does); None
    with fewer than two pairs or when one side is constant."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    if len(a) < 2:
        return None
    i, j = np.triu_indices(len(a), 1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    n1, n2 = int(np.sum(da == 0)), int(np.sum(db == 0))
    denom = np.sqrt(float(n0 - n1) * float(n0 - n2))
    return float(np.sum(da * db) / denom) if denom > 0 else None


def _costs(t: DeviceTable, keys: Sequence[str]) -> list[float]:
    return [float(t.entries[k].value(t.figure_field)) for k in keys]  # type: ignore[arg-type]


def block_rank(a: DeviceTable, b: DeviceTable, space: Any | None) -> dict[str, Any]:
    """Kendall tau of the common measured blocks, overall and per layer of ``space``."""
    common = sorted(k for k in set(a.entries) & set(b.entries)
                    if a.entries[k].ok and b.entries[k].ok)
    out: dict[str, Any] = {"blocks": len(common),
                           "kendall_tau": kendall_tau(_costs(a, common), _costs(b, common))}
    if space is None:
        return out
    layers = []
    for i, layer in enumerate(space.layers):
        keys = [blk.key() for blk in layer.candidates if blk.key() in common]
        keys = list(dict.fromkeys(keys))
        tau = kendall_tau(_costs(a, keys), _costs(b, keys))
        if tau is not None:
            layers.append({"layer": i, "candidates": len(keys), "kendall_tau": tau,
                           "cheapest_a": min(keys, key=lambda k: _costs(a, [k])[0]),
                           "cheapest_b": min(keys, key=lambda k: _costs(b, [k])[0])})
    taus = [r["kendall_tau"] for r in layers]
    out["layer_tau_mean"] = float(np.mean(taus)) if taus else None
    out["layer_tau_min"] = float(np.min(taus)) if taus else None
    out["layers"] = layers
    return out


def macs_scores(space: Any) -> AccuracyTable:
    """The stand-in accuracy table: each candidate scored by its multiply-accumulates
    (in millions), so the frontier trades compute for latency."""
    rows = [{blk.choice(): blk.macs() / 1e6 for blk in layer.candidates}
            for layer in space.layers]
    return AccuracyTable.from_rows(space, rows, provenance={
        "source": "stand-in: block multiply-accumulates (millions), no accuracy table given"})


def _pick(front: Any, q: float) -> tuple[float, Any]:
    """(budget, point) at relative position ``q`` of a frontier's latency range."""
    pts = front.points()
    lo, hi = pts[0].latency_ms, pts[-1].latency_ms
    budget = lo + q * (hi - lo)
    return budget, pts[front.index_for_budget(budget)]


def frontier_changes(a: DeviceTable, b: DeviceTable, space: Any,
                     accuracy: AccuracyTable | None = None) -> dict[str, Any]:
    """The frontier under each table (one accuracy table, or :func:`macs_scores`), compared
    by membership and at budgets at the same relative place of each latency range."""
    from ..errors import UserError
    from ..solver import frontier
    from ..solver.problem import tolerance

    acc = accuracy if accuracy is not None else macs_scores(space)
    try:
        fa, fb = frontier(acc, a), frontier(acc, b)
    except UserError as exc:
        return {"error": str(exc)}
    on_a = {p.architecture.choices for p in fa.points()}
    on_b = {p.architecture.choices for p in fb.points()}
    picks = []
    for q in QUANTILES:
        bud_a, pa = _pick(fa, q)
        bud_b, pb = _pick(fb, q)
        a_on_b = b.predict(space, pa.architecture).latency_ms
        picks.append({
            "position": q, "budget_a_ms": bud_a, "budget_b_ms": bud_b,
            "same": pa.architecture.choices == pb.architecture.choices,
            "pick_a": pa.architecture.notation(), "pick_b": pb.architecture.notation(),
            "score_a": pa.score, "score_b": pb.score,
            # A's pick as B would run it: over B's budget, or dominated on B's frontier?
            "pick_a_on_b_ms": a_on_b,
            "pick_a_within_b_budget": bool(a_on_b <= bud_b + tolerance(bud_b)),
            "pick_a_on_b_frontier": pa.architecture.choices in on_b,
            # what choosing with A costs on B: B's pick scores this much more (relative)
            "score_gap": (pb.score - pa.score) / abs(pb.score) if pb.score else None})
    return {"score": ("accuracy table" if accuracy is not None else
                      "stand-in: block multiply-accumulates (no accuracy table given)"),
            "points_a": len(on_a), "points_b": len(on_b), "common_points": len(on_a & on_b),
            "jaccard": len(on_a & on_b) / len(on_a | on_b) if on_a | on_b else None,
            "picks": picks,
            "picks_changed": sum(not p["same"] for p in picks)}


def compare_runtimes(a: DeviceTable, b: DeviceTable, space: Any | None,
                     accuracy: AccuracyTable | None = None) -> dict[str, Any]:
    """Block ranks and, when the space is known, frontier changes of tables ``a`` and ``b``."""
    from ..errors import TableError

    if a.space_id and b.space_id and a.space_id != b.space_id:
        raise TableError(f"the tables are of different spaces ({a.space or '?'} {a.space_id}, "
                         f"{b.space or '?'} {b.space_id}); a rank comparison needs one space")
    out = {"rank": block_rank(a, b, space)}
    if space is None:
        out["frontier"] = {"error": "the tables' space is not built in: pass --space FILE"}
    else:
        out["frontier"] = frontier_changes(a, b, space, accuracy)
    return out
