"""The exact multiple-choice knapsack: a layer-by-layer merge of Pareto sets.

A partial solution after layer ``l`` is one choice per layer ``0..l``; its figures are
its summed latency, summed score and, when extra additive limits are set, its summed
resources (parameters, FLOPs). Merging layer ``l + 1`` pairs every surviving partial
solution with every candidate of that layer and drops the dominated pairs: a partial
solution ``a`` dominates ``b`` when it is no slower, scores no less and uses no more of
any limited resource, because then every completion of ``b`` is matched or beaten by
the same completion of ``a``. What survives the last layer is the whole
latency-score frontier, exact for real-valued latencies (nothing is discretised).

Two reductions keep the sets small without losing optimality:

- *feasibility*: a partial solution whose resource use plus the least use the remaining
  layers need exceeds a limit can never complete, and is dropped (likewise for latency
  when a latency cap is given);
- *slack clamping*: once a partial solution's use plus the *most* the remaining layers
  can add fits the limit, the limit no longer constrains it, so for dominance its use
  is raised to ``limit - most_remaining``; partial solutions that differ only in slack
  resources then compare on latency and score alone.

Ties are broken deterministically: among partial solutions with identical figures the
one whose choice indices come first lexicographically survives, so the final answer for
a budget is the highest score, then the lowest latency, then (without extra limits) the
lexicographically smallest choice indices. Figures should be integer-valued floats
(``hwnas.solver.problem.Quantised``) so that sums are exact and ties are real.
Pure numpy; no runtime, no tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Pairwise dominance checks run in blocks of this many rows (memory ~ block x kept).
_BLOCK = 256


@dataclass(frozen=True)
class ParetoSet:
    """The final frontier as arrays sorted by latency ascending (score strictly rising).

    ``latency`` and ``score`` exclude any constant term. ``choices`` holds, per point, the
    candidate index chosen at every layer (shape points x layers).
    """

    latency: np.ndarray
    score: np.ndarray
    choices: np.ndarray

    def __len__(self) -> int:
        return int(self.latency.shape[0])


_EARLIER = np.triu(np.ones((_BLOCK, _BLOCK), dtype=bool), k=1)  # [j, i]: j before i


def _dominated_by(ref_s: np.ndarray, ref_r: np.ndarray, s: np.ndarray, r: np.ndarray
                  ) -> np.ndarray:
    """Which of the points (s, r) some reference point weakly dominates."""
    dom = np.zeros(s.shape[0], dtype=bool)
    if ref_s.shape[0] == 0 or s.shape[0] == 0:
        return dom
    # only references scoring at least the block's lowest score can dominate
    order = np.argsort(-ref_s, kind="stable")
    ref_s, ref_r = ref_s[order], ref_r[order]
    reach = int(np.searchsorted(-ref_s, -s.min(), side="right"))
    for lo in range(0, reach, _BLOCK):
        open_ = np.nonzero(~dom)[0]
        if open_.shape[0] == 0:
            break
        hi = min(lo + _BLOCK, reach)
        m = ref_s[lo:hi, None] >= s[None, open_]
        for j in range(r.shape[1]):
            m &= ref_r[lo:hi, j, None] <= r[None, open_, j]
        dom[open_] = m.any(axis=0)
    return dom


def _nondominated(lat: np.ndarray, score: np.ndarray, res: np.ndarray, lex: np.ndarray
                  ) -> np.ndarray:
    """Indices (in lexicographic sort order of the figures) of the non-dominated points.

    ``res`` has shape (n, d) with d >= 0 resource columns, smaller is better.
    """
    keys = [lex] + [res[:, j] for j in range(res.shape[1] - 1, -1, -1)] + [-score, lat]
    order = np.lexsort(keys)
    s = score[order]
    if res.shape[1] == 0:
        # 2-D: sorted by latency then score descending, a point survives when it beats
        # the best score of every point before it.
        best_before = np.maximum.accumulate(s)
        keep = np.empty(s.shape[0], dtype=bool)
        keep[0] = True
        keep[1:] = s[1:] > best_before[:-1]
        return order[keep]
    r = res[order]
    n = s.shape[0]
    kept: list[np.ndarray] = []
    # Earlier kept points are no slower, so only their (score, resources) projection
    # matters; comparing against the non-dominated part of that projection ("front")
    # plus the points kept since it was last rebuilt ("pending") is exact by transitivity.
    front_s, front_r = np.empty(0), np.empty((0, r.shape[1]))
    pend_s, pend_r = [front_s], [front_r]
    n_pend = 0
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        bs, br = s[lo:hi], r[lo:hi]
        ref_s = np.concatenate([front_s] + pend_s)
        ref_r = np.concatenate([front_r] + pend_r)
        dom = _dominated_by(ref_s, ref_r, bs, br)
        # earlier points of the same block (dominated ones too: transitivity again)
        m = (bs[:, None] >= bs[None, :]) & _EARLIER[:hi - lo, :hi - lo]
        for j in range(br.shape[1]):
            m &= br[:, j, None] <= br[None, :, j]
        dom |= m.any(axis=0)
        idx = np.nonzero(~dom)[0]
        kept.append(lo + idx)
        pend_s.append(bs[idx])
        pend_r.append(br[idx])
        n_pend += idx.shape[0]
        if n_pend > max(_BLOCK, front_s.shape[0]):
            all_s = np.concatenate([front_s] + pend_s)
            all_r = np.concatenate([front_r] + pend_r)
            f = _nondominated(all_r[:, 0], all_s, all_r[:, 1:], np.arange(all_s.shape[0]))
            front_s, front_r = all_s[f], all_r[f]
            pend_s, pend_r, n_pend = [], [], 0
    return order[np.concatenate(kept)]


def pareto_frontier(costs: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                    resources: Sequence[np.ndarray] = (), limits: Sequence[float] = (),
                    latency_cap: float | None = None) -> ParetoSet:
    """Exact latency-score frontier of choosing one candidate per layer.

    ``costs[l]`` and ``scores[l]`` are per-candidate arrays of layer ``l`` (an ``inf`` cost
    marks a candidate that can never be chosen). ``resources[l]`` has shape
    (candidates, d) and ``limits`` the d matching caps on the summed resource;
    ``latency_cap`` optionally caps the summed latency. Returns an empty set when
    nothing is feasible.
    """
    n_layers = len(costs)
    d = len(limits)
    res = [np.asarray(r, dtype=float).reshape(len(c), d) for r, c in
           zip(resources, costs)] if d else [np.zeros((len(c), 0)) for c in costs]
    lim = np.asarray(limits, dtype=float)
    # least and most any suffix of layers can still add, per resource and latency
    min_rest = np.zeros((n_layers + 1, d))
    max_rest = np.zeros((n_layers + 1, d))
    min_lat_rest = np.zeros(n_layers + 1)
    for l in range(n_layers - 1, -1, -1):
        ok = np.isfinite(costs[l])
        min_rest[l] = min_rest[l + 1] + (res[l][ok].min(axis=0) if d else 0)
        max_rest[l] = max_rest[l + 1] + (res[l][ok].max(axis=0) if d else 0)
        min_lat_rest[l] = min_lat_rest[l + 1] + costs[l][ok].min()

    lat = np.zeros(1)
    sc = np.zeros(1)
    used = np.zeros((1, d))
    lex = np.zeros(1, dtype=np.int64)  # rank of each state's choice prefix
    parents: list[np.ndarray] = []
    picks: list[np.ndarray] = []
    for l in range(n_layers):
        c = np.asarray(costs[l], dtype=float)
        k = c.shape[0]
        cand_lat = (lat[:, None] + c[None, :]).ravel()
        cand_sc = (sc[:, None] + np.asarray(scores[l], dtype=float)[None, :]).ravel()
        cand_used = ((used[:, None, :] + res[l][None, :, :]).reshape(-1, d) if d
                     else np.zeros((lat.shape[0] * k, 0)))
        cand_lex = (lex[:, None] * k + np.arange(k)[None, :]).ravel()
        ok = np.isfinite(cand_lat)
        if latency_cap is not None:
            ok &= cand_lat + min_lat_rest[l + 1] <= latency_cap
        if d:
            ok &= np.all(cand_used + min_rest[l + 1] <= lim, axis=1)
        sel = np.nonzero(ok)[0]
        if sel.shape[0] == 0:
            return ParetoSet(np.empty(0), np.empty(0), np.empty((0, n_layers), dtype=np.int64))
        cmp_used = np.maximum(cand_used[sel], lim - max_rest[l + 1]) if d else cand_used[sel]
        survivors = sel[_nondominated(cand_lat[sel], cand_sc[sel], cmp_used, cand_lex[sel])]
        parents.append(survivors // k)
        picks.append(survivors % k)
        lat, sc, used = cand_lat[survivors], cand_sc[survivors], cand_used[survivors]
        lex = np.argsort(np.argsort(cand_lex[survivors], kind="stable"), kind="stable")
    # the limits are constraints, not objectives: the answer is the 2-D frontier
    final = _nondominated(lat, sc, np.zeros((lat.shape[0], 0)), lex)
    choices = np.empty((final.shape[0], n_layers), dtype=np.int64)
    idx = final
    for l in range(n_layers - 1, -1, -1):
        choices[:, l] = picks[l][idx]
        idx = parents[l][idx]
    return ParetoSet(lat[final], sc[final], choices)
