"""The measurement protocol: interleaved rounds, a stop rule, robust statistics.

Shared machines are noisy: a neighbour's burst can slow every call for a second. Taking
all samples of one block back to back lets such a burst land on that block alone, so the
protocol interleaves: each round visits every pending item once (in a rotating order),
runs one untimed call to restore its caches, then ``per_round`` timed calls. A burst then
spreads over many items instead of biasing one. An item is finished when its running
median moved less than ``stable_rel`` for ``stable_rounds`` rounds in a row (after at
least ``min_samples``, and with the median's standard error below ``se_rel``), or at ``max_samples`` / ``item_cap_s`` of sampling (recorded as
not stable). The figure is the median; the interquartile range and the count are kept.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .base import Runner


@dataclass(frozen=True)
class Protocol:
    warmup: int = 5           # untimed calls per item before its first round
    per_round: int = 3        # timed calls per item and round (after one untimed call)
    min_samples: int = 30
    max_samples: int = 300
    stable_rel: float = 0.01  # the median moved less than 1% ...
    stable_rounds: int = 3    # ... in this many consecutive rounds ...
    se_rel: float = 0.01      # ... and its standard error is below 1% of it
    item_cap_s: float = 15.0  # sampling time cap per item
    total_cap_s: float = 0.0  # cap for a whole run (0: none); unfinished items stay pending

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": "interleaved-rounds-v1", **asdict(self),
                             "figure": "median", "spread": "iqr",
                             "overhead": "median of an identity graph, subtracted per block"}
        return d

    @classmethod
    def quick(cls) -> "Protocol":
        """A short protocol for tests and smoke runs (figures are noisier)."""
        return cls(warmup=1, per_round=2, min_samples=4, max_samples=8, stable_rounds=1,
                   stable_rel=0.05, se_rel=0.5, item_cap_s=1.0)


@dataclass(frozen=True)
class Stats:
    median_ms: float
    p25_ms: float
    p75_ms: float
    min_ms: float
    n: int
    stable: bool = True

    @property
    def spread_ms(self) -> float:
        return self.p75_ms - self.p25_ms

    def entry(self) -> dict[str, Any]:
        """The device-table entry (``hwnas.tables.device.LatencyStat`` form)."""
        return {"median_ms": round(self.median_ms, 6), "spread_ms": round(self.spread_ms, 6),
                "n": self.n, "status": "ok", "p25_ms": round(self.p25_ms, 6),
                "p75_ms": round(self.p75_ms, 6), "min_ms": round(self.min_ms, 6),
                "stable": self.stable}


def summarize(samples: "list[float] | np.ndarray", stable: bool = True) -> Stats:
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        raise ValueError("no samples")
    p25, med, p75 = np.percentile(a, [25, 50, 75])
    return Stats(float(med), float(p25), float(p75), float(a.min()), int(a.size), stable)


@dataclass
class _Item:
    runner: Runner
    samples: list
    spent_s: float = 0.0
    last_median: float | None = None
    calm_rounds: int = 0
    warmed: bool = False


Result = "Stats | str"  # a str is the reason an item failed


def measure_interleaved(runners: Mapping[str, Runner], protocol: Protocol,
                        on_round: Callable[[dict[str, Any]], "set[str] | None"] | None = None,
                        ) -> dict[str, Any]:
    """Measure every runner; returns key -> Stats, or key -> reason string on failure.

    ``on_round`` receives the items finished in that round (key -> Stats or reason) and may
    return keys to drop (finished elsewhere, e.g. by a concurrent process).
    """
    items = {k: _Item(r, []) for k, r in runners.items()}
    results: dict[str, Any] = {}
    start = time.monotonic()
    rnd = 0
    while items:
        finished: dict[str, Any] = {}
        keys = list(items)
        shift = rnd % len(keys)
        for key in keys[shift:] + keys[:shift]:
            it = items[key]
            try:
                if not it.warmed:
                    for _ in range(protocol.warmup):
                        it.runner.time_ms()
                    it.warmed = True
                t0 = time.perf_counter()
                it.runner.time_ms()  # untimed: restore caches after the other items ran
                for _ in range(protocol.per_round):
                    it.samples.append(it.runner.time_ms())
                it.spent_s += time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001 - a runtime's own error types vary
                finished[key] = f"inference failed: {exc.__class__.__name__}: {_one_line(exc)}"
                continue
            done = _stop(it, protocol)
            if done is not None:
                finished[key] = summarize(it.samples, stable=done)
        rnd += 1
        for key in finished:
            items.pop(key)
        drop = on_round(finished) if on_round else None
        results.update(finished)
        for key in drop or ():
            items.pop(key, None)
        if protocol.total_cap_s and time.monotonic() - start > protocol.total_cap_s:
            break
    return results


def _stop(it: _Item, p: Protocol) -> "bool | None":
    """True: stable; False: capped; None: go on."""
    n = len(it.samples)
    med = float(np.median(it.samples))
    if n >= p.min_samples and it.last_median is not None:
        moved = abs(med - it.last_median) / max(med, 1e-9)
        it.calm_rounds = it.calm_rounds + 1 if moved <= p.stable_rel else 0
        if it.calm_rounds >= p.stable_rounds and _median_se(it.samples) <= p.se_rel * med:
            return True
    it.last_median = med
    if n >= p.max_samples or it.spent_s >= p.item_cap_s:
        return False
    return None


def _median_se(samples: list) -> float:
    """Standard error of the median from the IQR (normal approximation: 1.2533 * sigma/sqrt n)."""
    p25, p75 = np.percentile(samples, [25, 75])
    return 1.2533 * (p75 - p25) / 1.349 / np.sqrt(len(samples))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else exc.__class__.__name__
