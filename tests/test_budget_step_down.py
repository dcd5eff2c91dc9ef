"""The step-down rule of ``hwnas.engines.budget``: a measured miss picks a faster frontier
point, scaled by the miss, recorded so that a rerun can reuse it."""

from __future__ import annotations

import pytest
from solver_tables import make_tables

from hwnas.engines.budget import MAX_STEPS, first_choices, missed, step_down, tried
from hwnas.solver import frontier


@pytest.fixture(scope="module")
def front():
    acc, dev = make_tables("tiny-32", seed=3)
    f = frontier(acc, dev)
    assert len(f) > 10
    return f, f.architectures()


def _manifest(arch, measured, step=None):
    m = {"architecture": arch.to_dict(),
         "engine": {"sha256": {"model.onnx": "ab" * 32}},
         "latency": {"predicted_ms": arch.latency_ms, "measured_ms": measured,
                     "measured_spread_ms": 0.01, "measured_statistic": "floor"}}
    if step:
        m["step_down"] = step
    return m


def test_met_or_unmeasured_budget_takes_no_step(front):
    f, archs = front
    a = archs[-1]
    assert step_down(f, archs, a.latency_ms, a, _manifest(a, a.latency_ms)) is None
    assert step_down(f, archs, 1e-9, a, _manifest(a, None)) is None
    assert not missed(_manifest(a, None), 1e-9)


def test_a_miss_steps_to_the_point_the_observed_error_allows(front):
    f, archs = front
    a = archs[-1]
    budget = a.latency_ms * 1.03
    # measured 20% over its prediction: the next network must be predicted within
    # budget / 1.2, and it is the most accurate one there
    nxt, rec = step_down(f, archs, budget, a, _manifest(a, a.latency_ms * 1.2))
    assert nxt.latency_ms <= budget / 1.2 + 1e-9
    assert list(nxt.choices) == list(f.best(budget / 1.2).choices)
    assert rec["budget_ms"] == budget and rec["tried"][0]["choices"] == list(a.choices)
    assert rec["tried"][0]["measured_ms"] == pytest.approx(a.latency_ms * 1.2)
    # a miss by a hair still moves at least one point faster
    nxt2, _ = step_down(f, archs, budget, a, _manifest(a, budget * 1.0001))
    assert nxt2.latency_ms < a.latency_ms
    assert archs.index(nxt2) == min(len(archs) - 2, f.index_for_budget(a.latency_ms / 1.0001))


def test_steps_stop_at_the_fastest_point_and_after_max_steps(front):
    f, archs = front
    a0 = archs[0]
    assert step_down(f, archs, a0.latency_ms, a0, _manifest(a0, a0.latency_ms * 2)) is None
    # a miss far below the fastest point's prediction still steps to the fastest
    a = archs[5]
    nxt, _ = step_down(f, archs, a.latency_ms, a, _manifest(a, a.latency_ms * 100))
    assert nxt == archs[0]
    # the record grows by one entry per step and the walk ends after MAX_STEPS
    cur, m, budget = archs[-1], None, archs[-1].latency_ms
    m = _manifest(cur, budget * 1.05)
    steps = 0
    while (nxt := step_down(f, archs, budget, cur, m)) is not None:
        assert nxt[0].latency_ms < cur.latency_ms
        cur, rec = nxt
        steps += 1
        assert len(rec["tried"]) == steps
        m = _manifest(cur, budget * 1.05, rec)  # every engine keeps missing
    assert steps == MAX_STEPS
    assert first_choices(m) == list(archs[-1].choices) and len(tried(m)) == steps


def test_an_architecture_off_the_frontier_is_not_stepped(front):
    f, archs = front
    from hwnas.arch import sample_architecture
    from hwnas.spaces import load_space

    other = sample_architecture(load_space("tiny-32"), seed=1)
    if any(list(a.choices) == list(other.choices) for a in archs):
        pytest.skip("the sample happens to be on the frontier")
    other = other.with_figures(latency_ms=1.0, score=1.0) if other.latency_ms is None else other
    m = _manifest(other, 1e3)
    assert step_down(f, archs, 1e-3, other, m) is None
