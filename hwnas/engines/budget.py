"""Budgets met by measured engine files, not by predictions alone.

A network is chosen on its *predicted* latency (with a margin for prediction error), but a
budget is a promise about the engine file a user deploys. The margin comes from the
table's held-out error on random calibration networks, and the frontier's networks are not
random: on a shared 2-core host ONNX Runtime int8 frontier networks ran 6-8% over their predictions
while random ones stayed within 2.7%, and tiny-32 OpenVINO engines land in a fast or a slow
state per process (benchmarks/RESULTS.md, "Budget hit with the margin, repeated"). So the
engine file is measured, and when it misses its budget the next choice is a faster
frontier point: the one whose prediction, scaled by the miss just observed, would measure
within the budget (and at least one point faster). Each step is recorded in the manifest
(``step_down``), so a rerun reuses the decision instead of searching again.

No library does this: it is the solver's frontier walked with the runtime's own figure.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, Sequence, Union

from .manifest import EngineManifest

Manifest = Union[EngineManifest, Mapping[str, Any]]  # a decoded manifest or its JSON

MAX_STEPS = 3  # engines rebuilt per budget at most; then the miss is reported as it is


def missed(manifest: Manifest, budget_ms: float) -> bool:
    """True when the engine was measured and its figure is over ``budget_ms``."""
    meas = EngineManifest.of(manifest).measured_ms
    return meas is not None and meas > budget_ms


def tried(manifest: Manifest) -> list[dict[str, Any]]:
    """The networks tried before this engine's, for this budget (first: the solver's pick)."""
    rec = EngineManifest.of(manifest).step_down
    return list(rec.get("tried") or []) if rec is not None else []


def first_choices(manifest: Manifest) -> list[str]:
    """The choices the solver picked for the budget this engine was built for."""
    t = tried(manifest)
    if t and isinstance(t[0], Mapping):
        return list(t[0].get("choices") or [])
    return EngineManifest.of(manifest).choices


def index_of(archs: Sequence[Any], choices: Sequence[str]) -> int | None:
    """Frontier index of the architecture with ``choices`` (``archs``: the frontier's)."""
    want = list(choices)
    return next((i for i, a in enumerate(archs) if list(a.choices) == want), None)


def step_down(front: Any, archs: Sequence[Any], budget_ms: float, arch: Any,
              manifest: Manifest) -> tuple[Any, dict[str, Any]] | None:
    """When ``manifest``'s engine (built from ``arch``, a point of ``front``) missed
    ``budget_ms``: the faster architecture to build instead and the ``step_down`` record
    its manifest carries; None when it met the budget, when no faster point exists, or
    after :data:`MAX_STEPS` steps."""
    m = EngineManifest.of(manifest)
    if not missed(m, budget_ms):
        return None
    history = tried(m)
    i = index_of(archs, arch.choices)
    if len(history) >= MAX_STEPS or not i:  # None (not on this frontier) or 0 (the fastest)
        return None
    lat = m.latency
    meas, pred = float(lat["measured_ms"]), m.predicted_ms or arch.latency_ms
    # the prediction that, with the error just seen, would measure at the budget
    target = budget_ms * float(pred) / meas
    # (below the fastest point's prediction: the fastest point)
    j = min(i - 1, front.index_for_budget(target)) if target >= float(front.latency_ms[0]) \
        else 0
    nxt = archs[j]
    entry = {"choices": list(arch.choices), "predicted_ms": pred, "measured_ms": meas,
             "measured_spread_ms": lat.get("measured_spread_ms"),
             "statistic": lat.get("measured_statistic"),
             "engine_sha256": m.engine.get("sha256"),
             "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return nxt, {"budget_ms": budget_ms, "tried": history + [entry],
                 "rule": "the engine file is measured; when it misses its budget, a faster "
                         "frontier point is built: the one predicted within budget x "
                         "predicted/measured of the miss (at least one point faster), "
                         f"at most {MAX_STEPS} times"}
