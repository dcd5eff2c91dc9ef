"""A brute-force reference beside the exact solver: enumerate every architecture of a small
space. For checks and benchmarks that measure latency by something other than a device
table (MACs as a stand-in, say); the solver proper is :func:`hwnas.solver.frontier`.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from ..errors import UserError
from ..tables.accuracy import AccuracyTable

LatencyFn = Callable[[Sequence[str]], float]

MAX_ARCHITECTURES = 2_000_000


def _score_of(table: AccuracyTable, layer: int, choice: str) -> float:
    return table.score(layer, choice)


def exhaustive_best(table: AccuracyTable, latency: LatencyFn, budget: float | None
                    ) -> tuple[str, ...] | None:
    """The highest summed score within ``budget`` by ``latency``, over every architecture
    (assumed additive over layers, as the solver's model is); the per-layer argmax when
    ``budget`` is None; None when nothing fits."""
    space = table.space
    if budget is None:
        return tuple(max(layer.choices, key=functools.partial(_score_of, table, i))
                     for i, layer in enumerate(space.layers))
    if space.size() > MAX_ARCHITECTURES:
        raise UserError("a budgeted pick here enumerates the space; use the solver for large ones")
    scores, lats = np.zeros(()), np.zeros(())
    first = [layer.choices[0] for layer in space.layers]
    base = latency(tuple(first))
    for i, (row, layer) in enumerate(zip(table.matrix(), space.layers)):
        lat_row = [latency(tuple(first[:i] + [c] + first[i + 1:])) - base for c in layer.choices]
        scores = np.add.outer(scores, row)
        lats = np.add.outer(lats, np.asarray(lat_row))
    lats = lats + base
    masked = np.where(lats <= budget + 1e-9, scores, -np.inf)
    if not np.isfinite(masked).any():
        return None
    idx = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return tuple(layer.choices[j] for layer, j in zip(space.layers, idx))
