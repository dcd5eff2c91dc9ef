"""The measurement protocol: interleaved rounds, a stop rule, robust statistics.

Shared machines are noisy: a neighbour's burst can slow every call for a second. Taking
all samples of one block back to back lets such a burst land on that block alone, so the
protocol interleaves: each round visits every pending item once (in a rotating order),
runs one untimed call to restore its caches, then ``per_round`` timed calls. A burst then
spreads over many items instead of biasing one. An item is finished when its running
figure moved less than ``stable_rel`` for ``stable_rounds`` rounds in a row (after at
least ``min_samples`` and ``min_span_s`` seconds since its first sample; for the median also
with its standard error below ``se_rel``), or at ``max_samples`` / ``item_cap_s`` of
sampling (recorded as not stable).

The figure a table predicts is ``floor`` by default: the mean of the three fastest
samples. Why (measured, ``benchmarks/statistic_choice.py``, see ``hwnas/device_tables/
README.md``): a shared 2-core host runs in two phases, uncontended (one tiny-32 net 0.33 ms)
and contended (0.57 ms, a busy neighbour), switching every few milliseconds to minutes; a
median follows the phase mix of the moment (it moved 4-75% between 60-run blocks), while
the fast phase itself is tight (0.326-0.336 ms). A floor repeats where a median cannot,
but only for an item that meets a fast phase, so items sample at least ``min_span_s`` of
wall time and need their three fastest samples within ``floor_tol`` / ``floor_tol_ms``
(a populated mode, not one call that straddled a phase change), else they wait, paced, up
to ``max_span_s``; the mean of three, not the single minimum, so one freak sample does not
set it. Every item's turn is also bracketed by two calls of a small reference graph
(``measure_interleaved``): the ratio to it is kept per entry (``ref_ratio``; figure
``ref``) and ``phase_correct`` can scale samples taken while the reference ran contended.
Both were measured and are off by default: the ratio cancels most of a phase but not all
(reference 1.43x slower in the contended phase, networks 1.54-1.59x), and the correction
made blocks and networks disagree by 19% in a busy hour. Median, quartiles, p10/p90 and
the minimum are kept beside the floor; ``p90`` is the "upper" figure (what a contended
host shows).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
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
    figure: str = "floor"     # the statistic tables predict and checks measure (FIGURES)
    min_span_s: float = 30.0  # an item samples at least this long (wall time) to meet a fast phase
    floor_tol: float = 0.03   # floor: its FLOOR_K samples within this of each other (a populated
    #                           fast mode, not one call that straddled a phase change) ...
    floor_tol_ms: float = 0.002  # ... or within this (timer and call jitter of tiny items)
    phase_correct: bool = False  # floor: scale samples taken in a contended phase by the
    #                              reference's slowdown (tried; off: see hwnas/device_tables/README)
    max_span_s: float = 60.0  # floor: an item without a populated fast mode waits this long
    #                            (paced) for one before it is capped, recorded as not stable

    def __post_init__(self) -> None:
        if self.figure not in FIGURES:
            raise ValueError(f"unknown figure {self.figure!r}; one of {', '.join(FIGURES)}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": "interleaved-rounds-v2", **asdict(self),
                             "spread": "iqr", "upper": "p90",
                             "overhead": f"{self.figure} of an identity graph, subtracted per block"}
        return d

    @classmethod
    def quick(cls) -> "Protocol":
        """A short protocol for tests and smoke runs (figures are noisier)."""
        return cls(warmup=1, per_round=2, min_samples=4, max_samples=8, stable_rounds=1,
                   stable_rel=0.05, se_rel=0.5, item_cap_s=1.0, min_span_s=0.0, floor_tol=1.0,
                   max_span_s=0.0)

    @classmethod
    def fixed(cls, iterations: int = 0, duration_s: float = 0.0, figure: str = "floor"
              ) -> "Protocol":
        """No stop rule: every item takes exactly ``iterations`` timed calls, or samples for
        ``duration_s`` seconds of wall time (benchmark_app's ``-niter`` / ``-t``, trtexec's
        ``--iterations`` / ``--duration``). Items stay interleaved with the reference graph;
        their figures are marked not stable (no stability was asked for)."""
        if (iterations > 0) == (duration_s > 0):
            raise ValueError("give one of iterations or duration_s, a positive number")
        # calm rounds never reached: only the count or the span stops (``_stop``); calls
        # come in runs of up to 50 per turn, so a long count is not a round per call
        if iterations:
            return cls(warmup=5, per_round=max(1, min(50, iterations // 20)),
                       min_samples=iterations, max_samples=iterations, stable_rounds=_NEVER,
                       item_cap_s=1e9, min_span_s=0.0, max_span_s=0.0, figure=figure)
        return cls(warmup=5, per_round=20, min_samples=_NEVER, max_samples=_NEVER,
                   stable_rounds=_NEVER, item_cap_s=1e9, min_span_s=float(duration_s),
                   max_span_s=float(duration_s), figure=figure)

    @property
    def is_fixed(self) -> bool:
        """A :meth:`fixed` protocol: a count or a duration, no stop rule."""
        return self.stable_rounds >= _NEVER


_NEVER = 10 ** 9  # calm rounds a fixed protocol waits for: never

#: statistics a table can predict: name -> field of a table entry
FIGURES = {"floor": "floor_ms", "median": "median_ms", "p10": "p10_ms", "min": "min_ms",
           "ref": "ref_ms", "p90": "p90_ms"}
FLOOR_K = 3  # the floor is the mean of this many fastest samples
_PACE_S = 0.005  # shortest round once every pending item has max_samples


def table_figure(meta: Mapping[str, Any]) -> str:
    """The statistic a table's entries predict (tables of protocol v1: the median)."""
    proto = meta.get("protocol") if isinstance(meta, Mapping) else None
    fig = proto.get("figure", "median") if isinstance(proto, Mapping) else "median"
    return fig if fig in FIGURES else "median"


@dataclass(frozen=True)
class Stats:
    median_ms: float
    p25_ms: float
    p75_ms: float
    min_ms: float
    n: int
    stable: bool = True
    floor_ms: float = 0.0
    p10_ms: float = 0.0
    p90_ms: float = 0.0
    span_s: float = 0.0   # wall time from the item's first to its last sample
    ref_ratio: float = 0.0  # median of sample / adjacent reference call (0: no reference)
    ref_ms: float = 0.0     # ref_ratio x the run's reference floor (figure "ref")
    p99_ms: float = 0.0     # the tail deployment engineers quote (trtexec, benchmark_app)

    @property
    def spread_ms(self) -> float:
        return self.p75_ms - self.p25_ms

    def figure(self, name: str) -> float:
        return float(getattr(self, FIGURES[name]))

    def entry(self) -> dict[str, Any]:
        """The device-table entry (``hwnas.tables.device.LatencyStat`` form)."""
        return {"median_ms": round(self.median_ms, 6), "spread_ms": round(self.spread_ms, 6),
                "n": self.n, "status": "ok", "p25_ms": round(self.p25_ms, 6),
                "p75_ms": round(self.p75_ms, 6), "min_ms": round(self.min_ms, 6),
                "floor_ms": round(self.floor_ms, 6), "p10_ms": round(self.p10_ms, 6),
                "p90_ms": round(self.p90_ms, 6), "p99_ms": round(self.p99_ms, 6),
                "span_s": round(self.span_s, 3),
                "stable": self.stable,
                **({"ref_ratio": round(self.ref_ratio, 6), "ref_ms": round(self.ref_ms, 6)}
                   if self.ref_ratio else {})}


def summarize(samples: "list[float] | np.ndarray", stable: bool = True,
              span_s: float = 0.0, adj: "list[float] | None" = None,
              ref_floor: float = 0.0, correct: bool = True) -> Stats:
    """Statistics of an item's samples. With ``adj`` (the faster of the two reference calls
    around each sample) and the reference's floor, a sample taken while the reference ran
    slower than its floor is scaled down by that slowdown before the floor is taken: the
    floor of an item that met no uncontended moment is estimated, not reported as the
    contended figure (on a shared 2-core host a contended reference ran 1.43x slower, networks
    1.54-1.59x: the estimate is within about 7% where the raw figure was 45-60% off)."""
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        raise ValueError("no samples")
    p10, p25, med, p75, p90, p99 = np.percentile(a, [10, 25, 50, 75, 90, 99])
    ratio, floor = 0.0, float(np.mean(np.sort(a)[:FLOOR_K]))
    if adj is not None and len(adj) == a.size and ref_floor > 0:
        r = np.maximum(np.asarray(adj, dtype=float), 1e-12)
        ratio = float(np.median(a / r))
        if correct:
            floor = float(np.mean(np.sort(phase_corrected(a, r, ref_floor))[:FLOOR_K]))
    return Stats(float(med), float(p25), float(p75), float(a.min()), int(a.size), stable,
                 floor, float(p10), float(p90), float(span_s), ratio, ratio * ref_floor,
                 float(p99))


#: a sample is phase-corrected only when the faster of its two reference calls ran between
#: these multiples of the reference's floor: below, the moment counts as uncontended; above,
#: the reference call was itself pre-empted (a spike, not a phase) and says nothing
PHASE_BAND = (1.15, 1.8)


def phase_corrected(samples: np.ndarray, adj: np.ndarray, ref_floor: float) -> np.ndarray:
    """Samples scaled down by the reference's slowdown where it ran in the contended band."""
    k = adj / ref_floor
    band = (k >= PHASE_BAND[0]) & (k <= PHASE_BAND[1])
    return np.where(band, samples / np.where(band, k, 1.0), samples)


def reference_floor(samples: "list[float]") -> float:
    """The reference graph's floor over a run: its 2nd percentile once it has 300 calls
    (the extreme fastest calls of tens of thousands are outliers, not a phase), else the
    mean of its FLOOR_K fastest."""
    a = np.asarray(samples, dtype=float)
    if a.size >= 300:
        return float(np.percentile(a, 2))
    return float(np.mean(np.sort(a)[:FLOOR_K])) if a.size else 0.0


@dataclass
class _Item:
    runner: Runner
    samples: list
    spent_s: float = 0.0
    last_median: float | None = None
    calm_rounds: int = 0
    warmed: bool = False
    first_t: float | None = None
    last_t: float = 0.0
    adj: list = field(default_factory=list)  # faster reference call around each sample

    @property
    def span_s(self) -> float:
        return 0.0 if self.first_t is None else self.last_t - self.first_t


Result = "Stats | str"  # a str is the reason an item failed


def measure_interleaved(runners: Mapping[str, Runner], protocol: Protocol,
                        on_round: Callable[[dict[str, Any]], "set[str] | None"] | None = None,
                        reference: Runner | None = None, ref_log: "list[float] | None" = None,
                        ref_hint: float = 0.0) -> dict[str, Any]:
    """Measure every runner; returns key -> Stats, or key -> reason string on failure.

    ``on_round`` receives the items finished in that round (key -> Stats or reason) and may
    return keys to drop (finished elsewhere, e.g. by a concurrent process).

    With a ``reference`` runner (a small fixed graph, :func:`hwnas_profilers.onnxgraph.
    write_reference_model`), each item's turn is bracketed by one reference call before and
    one after; every sample is divided by the faster of the two, so a neighbour's load that
    slows item and reference alike cancels. ``ref_ms`` of an item is the median of those
    ratios times the reference's floor (``ref_log`` collects the reference calls for the
    caller, e.g. a table kept across resumed runs), and the ``floor`` of an item is
    phase-corrected by the reference (:func:`summarize`). The reference's floor is the
    lower of this run's and ``ref_hint`` (the best one this machine and runtime showed
    before, :func:`hwnas_profilers.bundle_run.reference_hint`), so a run that happens to meet no
    uncontended moment is still put on the same scale. Items finished in earlier rounds
    carry the floor known then; the final results carry the run's final floor.
    """
    items = {k: _Item(r, []) for k, r in runners.items()}
    results: dict[str, Any] = {}
    refs: list[float] = ref_log if ref_log is not None else []
    done_items: dict[str, _Item] = {}
    if protocol.figure == "ref" and reference is None:
        raise ValueError("the figure 'ref' needs a reference runner")
    if reference is not None:
        for _ in range(protocol.warmup):
            reference.time_ms()
    start = time.monotonic()
    rnd = 0
    rfl, rfl_n = 0.0, -1
    while items:
        finished: dict[str, Any] = {}
        t_round = time.perf_counter()
        # once a round: it sorts every call so far; a fixed protocol's many short rounds
        # re-sort only when the calls grew by 5% (the floor of a long run barely moves)
        if not protocol.is_fixed or rfl_n < 0 or len(refs) >= 1.05 * rfl_n:
            rfl, rfl_n = reference_floor_with(refs, ref_hint), len(refs)
        keys = list(items)
        shift = rnd % len(keys)
        for key in keys[shift:] + keys[:shift]:
            it = items[key]
            try:
                _turn(it, protocol, reference, refs)
            except Exception as exc:  # noqa: BLE001 - a runtime's own error types vary
                finished[key] = f"inference failed: {exc.__class__.__name__}: {_one_line(exc)}"
                continue
            done = _stop(it, protocol, rfl)
            if done is not None:
                finished[key] = summarize(it.samples, stable=done, span_s=it.span_s,
                                          adj=it.adj or None, ref_floor=rfl,
                                          correct=protocol.phase_correct)
                done_items[key] = it
        rnd += 1
        if items and all(len(i.samples) >= protocol.max_samples for i in items.values()):
            # only span waits left: pace the rounds (a sample every few ms is plenty to
            # meet a fast phase) instead of spinning a core and piling up samples
            time.sleep(max(0.0, _PACE_S - (time.perf_counter() - t_round)))
        for key in finished:
            items.pop(key)
        drop = on_round(finished) if on_round else None
        results.update(finished)
        for key in drop or ():
            items.pop(key, None)
        if protocol.total_cap_s and time.monotonic() - start > protocol.total_cap_s:
            break
    if refs:  # every figure on the run's final reference floor
        final = reference_floor_with(refs, ref_hint)
        results = {k: summarize(done_items[k].samples, v.stable, v.span_s,
                                done_items[k].adj or None, final, protocol.phase_correct)
                   if isinstance(v, Stats) and k in done_items else v
                   for k, v in results.items()}
    return results


def _turn(it: _Item, protocol: Protocol, reference: Runner | None, refs: list[float]) -> None:
    """One item's turn in a round: its samples, bracketed by reference calls."""
    if not it.warmed:
        for _ in range(protocol.warmup):
            it.runner.time_ms()
        it.warmed = True
    t0 = time.perf_counter()
    r1 = reference.time_ms() if reference is not None else 0.0
    it.runner.time_ms()  # untimed: restore caches after the other items ran
    # past max_samples an item only waits out its span: one call per round
    calls = 1 if len(it.samples) >= protocol.max_samples else protocol.per_round
    if protocol.is_fixed:  # exactly the count asked for
        calls = max(1, min(calls, protocol.max_samples - len(it.samples)))
    new = [it.runner.time_ms() for _ in range(calls)]
    it.samples.extend(new)
    if reference is not None:
        r2 = reference.time_ms()
        refs.extend((r1, r2))
        # the faster of the two: a sample next to one uncontended reference
        # call may itself be uncontended, so it is never scaled down
        it.adj.extend([min(r1, r2)] * len(new))
    t1 = time.perf_counter()
    it.spent_s += t1 - t0
    it.first_t = t0 if it.first_t is None else it.first_t
    it.last_t = t1


def reference_floor_with(refs: "list[float]", hint: float) -> float:
    """The reference floor in use: the lower of this run's and ``hint`` (the best this
    machine showed before; 0: none), whichever exists."""
    run = reference_floor(refs)
    return min(run, hint) if hint > 0 and run > 0 else (run or hint)


def _stop(it: _Item, p: Protocol, ref_floor: float = 0.0) -> "bool | None":
    """True: stable; False: capped; None: go on."""
    n = len(it.samples)
    if p.is_fixed:  # the count, the span or the cap alone (no figure to compute every round)
        reached = it.span_s >= p.min_span_s if p.min_span_s else n >= p.max_samples
        return False if reached or it.spent_s >= p.item_cap_s else None
    a = np.asarray(it.samples)
    if p.figure == "ref" and it.adj:  # the ratio to the reference: stable like a median
        a = a / np.asarray(it.adj)
        fig = float(np.median(a))
    elif p.figure == "floor" and p.phase_correct and it.adj and ref_floor > 0:
        a = phase_corrected(a, np.asarray(it.adj), ref_floor)
        fig = float(np.mean(np.sort(a)[:FLOOR_K]))
    else:
        fig = float(np.median(a)) if p.figure == "median" else summarize(a).figure(p.figure)
    if n >= p.min_samples and it.last_median is not None and it.span_s >= p.min_span_s:
        moved = abs(fig - it.last_median) / max(fig, 1e-9)
        it.calm_rounds = it.calm_rounds + 1 if moved <= p.stable_rel else 0
        if it.calm_rounds >= p.stable_rounds and (
                p.figure not in ("median", "ref") or _median_se(list(a)) <= p.se_rel * fig) and (
                p.figure != "floor" or _populated(a, p.floor_tol, p.floor_tol_ms)):
            return True
    it.last_median = fig
    # the span rule may need more than item_cap_s of sampling: an item interleaved with many
    # others samples a small share of the wall time, so the cap waits for the span as well
    spanned = it.span_s >= p.min_span_s
    if p.figure == "floor" and not _populated(a, p.floor_tol, p.floor_tol_ms):
        spanned = it.span_s >= max(p.max_span_s, p.min_span_s)  # wait for a fast phase
    if (spanned and (n >= p.max_samples or it.spent_s >= p.item_cap_s)) or \
            n >= 50 * p.max_samples:
        return False
    return None


def _populated(a: np.ndarray, tol: float, tol_ms: float = 0.0) -> bool:
    """The FLOOR_K fastest samples agree within ``tol`` (or ``tol_ms``): the floor is a
    mode, not a blip."""
    low = np.sort(a)[:FLOOR_K]
    return bool(low.size == FLOOR_K and low[-1] <= max(low[0] * (1.0 + tol), low[0] + tol_ms))


def _median_se(samples: list) -> float:
    """Standard error of the median from the IQR (normal approximation: 1.2533 * sigma/sqrt n)."""
    p25, p75 = np.percentile(samples, [25, 75])
    return 1.2533 * (p75 - p25) / 1.349 / np.sqrt(len(samples))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else exc.__class__.__name__
