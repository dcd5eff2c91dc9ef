"""Calibration of the additive model on whole networks measured end to end.

The additive figure of a network is ``overhead + sum(median(b) - overhead)`` over its
blocks (the model in ``hwnas.tables.device``). Isolated blocks miss fusion, cache and
scheduling effects, so a line ``measured = scale * additive + offset`` is fitted on the
bundle's calibration networks. Two robust candidates are fitted and the one with the
smaller leave-one-out median error is kept (it is never picked by its in-sample fit):

- ``ratio``: scale = median(measured / additive), offset 0 (one parameter; safe when the
  networks span a narrow latency range, where an offset is poorly determined);
- ``huber``: scale and offset by iteratively reweighted least squares with Huber weights
  on relative residuals (bounded influence of one noisy network).

The stored report gives the share of calibration networks within 5% and 10% and the
median absolute error, in-sample and leave-one-out.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

HUBER_K = 0.05  # relative residual beyond which a network's weight decays
#: the statistics a table carries a line for beside its own (what SLOs and vendor tools state)
LINE_STATISTICS = ("median", "p90")
#: the p90 line's fields under its older name, ``upper``, which tables still carry
UPPER_FIELDS = ("figure", "scale", "offset_ms", "overhead_ms", "loo_within_10pct")

#: one statistic's networks: its per-call overhead, and per network name the figures of the
#: network's blocks and the network's own measured figure, all in that statistic
Networks = tuple[float, Mapping[str, tuple[Sequence[float], float]]]


def _fit_ratio(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(np.median(y / x)), 0.0


def _fit_huber(x: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    a = np.stack([x, np.ones_like(x)], axis=1)
    w = 1.0 / y ** 2  # relative errors
    coef = np.zeros(2)
    for _ in range(iters):
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
        rel = np.abs(a @ coef - y) / y
        hub = np.where(rel <= HUBER_K, 1.0, HUBER_K / np.maximum(rel, 1e-12))
        w_new = hub / y ** 2
        if np.allclose(w_new, w, rtol=1e-6):
            break
        w = w_new
    return float(coef[0]), float(coef[1])


_FITS = {"ratio": _fit_ratio, "huber": _fit_huber}


def _valid(scale: float, offset: float, x: np.ndarray) -> bool:
    return bool(np.isfinite(scale) and np.isfinite(offset) and scale > 0
                and np.all(scale * x + offset > 0))


def errors(scale: float, offset: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative errors (predicted - measured) / measured."""
    return (scale * x + offset - y) / y


def report(err: np.ndarray, prefix: str = "") -> dict[str, Any]:
    a = np.abs(err)
    return {f"{prefix}within_5pct": float(np.mean(a <= 0.05)),
            f"{prefix}within_10pct": float(np.mean(a <= 0.10)),
            f"{prefix}median_abs_err_pct": float(100 * np.median(a)),
            f"{prefix}max_abs_err_pct": float(100 * a.max())}


def _loo(fit, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    errs = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        s, o = fit(x[keep], y[keep])
        if not _valid(s, o, x):
            return None
        errs.append(errors(s, o, x[i:i + 1], y[i:i + 1])[0])
    return np.asarray(errs)


def fit_calibration(additive_ms: Sequence[float], measured_ms: Sequence[float],
                    names: Sequence[str] = ()) -> dict[str, Any]:
    """The ``calibration`` mapping of a device table (scale, offset_ms, fitted_on, report)."""
    x = np.asarray(additive_ms, dtype=float)
    y = np.asarray(measured_ms, dtype=float)
    if x.size == 0:
        return {"scale": 1.0, "offset_ms": 0.0, "fitted_on": 0, "method": "none",
                "note": "no calibration networks were measured; the additive model is uncalibrated"}
    best: tuple[float, str, float, float, np.ndarray | None] | None = None
    for name, fit in _FITS.items():
        if name == "huber" and x.size < 4:
            continue  # two parameters from three points: no held-out evidence worth the name
        s, o = fit(x, y)
        if not _valid(s, o, x):
            continue
        loo = _loo(fit, x, y) if x.size >= 3 else None
        score = float(np.median(np.abs(loo))) if loo is not None else float("inf")
        # prefer the one-parameter ratio unless the affine fit is clearly better held out
        if name == "huber" and best is not None and score > 0.8 * best[0]:
            continue
        best = (score, name, s, o, loo)
    assert best is not None  # ratio is always valid for positive figures
    _, method, scale, offset, loo = best
    out: dict[str, Any] = {"scale": scale, "offset_ms": offset, "fitted_on": int(x.size),
                           "method": method, **report(errors(scale, offset, x, y))}
    if loo is not None:
        out.update(report(loo, "loo_"))
    if names:
        out["networks"] = [{"name": n, "additive_ms": round(float(a), 6),
                            "measured_ms": round(float(m), 6)} for n, a, m in zip(names, x, y)]
    return out


def stat_line(statistic: str, overhead_ms: float, fit: dict[str, Any]) -> dict[str, Any]:
    """One statistic's calibration line as a table stores it beside its main one."""
    return {"figure": statistic, "scale": fit["scale"], "offset_ms": fit["offset_ms"],
            "overhead_ms": round(float(overhead_ms), 6),
            **{k: fit.get(k) for k in ("fitted_on", "loo_within_5pct", "loo_within_10pct",
                                       "loo_median_abs_err_pct", "loo_max_abs_err_pct")}}


def additive_ms(overhead_ms: float, blocks_ms: Sequence[float]) -> float:
    """A network's additive figure: the per-call overhead once, plus what each block takes
    beyond it (never below zero)."""
    return overhead_ms + sum(max(float(v) - overhead_ms, 0.0) for v in blocks_ms)


def fit_networks(networks: Networks) -> dict[str, Any]:
    """:func:`fit_calibration` of one statistic's networks (named in the result)."""
    overhead, nets = networks
    return fit_calibration([additive_ms(overhead, blocks) for blocks, _ in nets.values()],
                           [float(measured) for _, measured in nets.values()], list(nets))


def statistic_lines(figure: str, networks: Mapping[str, Networks]) -> dict[str, Any]:
    """``{"lines": {statistic: line}}`` for each of :data:`LINE_STATISTICS` but the table's
    own ``figure`` that ``networks`` holds, each fitted on its own figures of the same
    networks; with a p90 line, also ``upper`` (its older name). The one fit of these lines
    for a table profiled on the device and for one refitted on the host."""
    lines = {name: stat_line(name, networks[name][0], fit_networks(networks[name]))
             for name in LINE_STATISTICS if name != figure and name in networks}
    out: dict[str, Any] = {"lines": lines}
    if "p90" in lines:
        out["upper"] = {k: lines["p90"][k] for k in UPPER_FIELDS}
    return out
