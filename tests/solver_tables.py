"""Tables built in the tests (no measurements): a seeded device and accuracy table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hwnas.spaces import SearchSpace, load_space, space_from_dict
from hwnas.tables import AccuracyTable, DeviceTable
from hwnas.tables.device import Calibration, LatencyStat

if TYPE_CHECKING:
    from hwnas.arch import Architecture


def small_space(layers: int = 5, choices: tuple[str, ...] = ("k3e3", "k3e6", "k5e3", "k5e6"),
                skip: bool = True, name: str = "small") -> SearchSpace:
    """A tiny space: ``layers`` stride-1 layers at 8x8x8 (skip allowed when asked)."""
    ch = list(choices) + (["skip"] if skip else [])
    return space_from_dict({
        "name": name, "input": [16, 16, 3], "classes": 10,
        "stem": {"out": 8, "kernel": 3, "stride": 2},
        "layers": [{"out": 8, "stride": 1, "choices": ch} for _ in range(layers)],
        "head": {"out": 32}})


def make_tables(space: SearchSpace | str, seed: int = 0, *, integer: bool = False,
                overhead_ms: float = 0.0, scale: float = 1.0, offset_ms: float = 0.0,
                failed: tuple[str, ...] = ()) -> tuple[AccuracyTable, DeviceTable]:
    """Random tables; ``integer`` draws small integers so that many sums tie exactly."""
    sp = load_space(space) if isinstance(space, str) else space
    rng = np.random.default_rng(seed)
    entries = {}
    for b in sp.unique_blocks():
        if b.key() in failed:
            entries[b.key()] = LatencyStat(None, status="failed", reason="unsupported op")
            continue
        if integer:
            ms = float(rng.integers(0, 4)) + overhead_ms
        else:
            ms = float(b.macs() / 2e7 * rng.uniform(0.7, 1.3) + rng.uniform(0.0, 0.1)) + overhead_ms
        entries[b.key()] = LatencyStat(ms, 0.01, 10)
    device = DeviceTable({"backend": "test", "precision": "fp32", "device": "unit-test"},
                         entries, sp.name, sp.id, overhead_ms, Calibration(scale, offset_ms))
    rows = []
    for layer in sp.layers:
        if integer:
            rows.append({c: float(rng.integers(0, 4)) for c in layer.choices})
        else:
            rows.append({c: float(0.5 + 0.4 * np.log1p(b.macs()) / 16 + rng.normal(0, 0.02))
                         for c, b in zip(layer.choices, layer.candidates)})
    return AccuracyTable.from_rows(sp, rows, {"source": "unit test"}), device


def best_within(acc: AccuracyTable, dev: DeviceTable, budget_ms: float, **kw) -> "Architecture":
    """The solver's answer for one budget, through its front door (a cut frontier)."""
    from hwnas.solver import frontier

    return frontier(acc, dev, budget_ms=budget_ms, **kw).best(budget_ms)
