"""A lower precision's run beside fp32: the measured latency ratio and the predicted one.

Read from the run folder only (nothing is measured here): the int8 (or fp16) run's engines
and baselines, the fp32 run's of the same backend in the same folder where there is one,
and the fp32 device table (the folder's, else the shipped table of the runtime, another
machine's: its ratio still tells). Both precisions measure the same baseline family, so
the networks measured in both give the measured ratio on equal terms; an engine whose
network the fp32 run did not measure is set against the fp32 table's prediction, and said
so.
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping

from .folder import RunFolder


def precision_comparison(run: RunFolder, space: Any, summary: Mapping[str, Any], dev: Any,
                         baselines: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The engines and the networks measured in both precisions, with measured and
    predicted ratios to fp32; None for an fp32 run, or without any fp32 figure."""
    if run.precision == "fp32":
        return None
    from ..errors import UserError

    statistic = str(summary.get("statistic") or dev.figure)
    try:
        dev = dev.for_statistic(statistic)
    except UserError:
        return None  # the run's statistic has no line in its own table: nothing to predict
    fp32_dev, table_from = _fp32_table(run, space, statistic)
    fp = RunFolder(run.root, run.backend, "fp32", run.profiler)
    fp32_ms = _measured(fp, statistic)
    if fp32_dev is None and not fp32_ms:
        return None
    own = _measured(run, statistic, summary, baselines)
    engines = [_engine_row(space, dev, fp32_dev, fp32_ms, r) for r in summary["results"]]
    common = [ch for ch in own if ch in fp32_ms]
    meas = [own[ch] / fp32_ms[ch] for ch in common]
    pred = [_pred(space, dev, ch) / _pred(space, fp32_dev, ch) for ch in common] \
        if fp32_dev is not None else []
    both = {"networks": len(common),
            "median_measured_ratio": statistics.median(meas) if meas else None,
            "median_predicted_ratio": statistics.median(pred) if pred else None}
    return {"precision": run.precision, "statistic": statistic, "fp32_table": table_from,
            "fp32_run": str(fp.summary) if fp.summary.is_file() else None,
            "engines": engines, "measured_in_both": both}


def _fp32_table(run: RunFolder, space: Any, statistic: str) -> tuple[Any, str | None]:
    """The fp32 device table of the run's profiler (the folder's, else the shipped one), in
    ``statistic``, and where it came from; (None, None) when there is none."""
    import warnings

    from ..errors import HwnasWarning, UserError
    from ..tables.device import load_device_table, shipped_table_path

    own = RunFolder(run.root, run.backend, "fp32", run.profiler).device_table
    shipped = f"{space.name}_{run.profiler}_cpu_fp32"
    ref = str(own) if own.is_file() else shipped if shipped_table_path(shipped) else None
    if ref is None:
        return None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HwnasWarning)
            t = load_device_table(ref).for_statistic(statistic)
    except UserError:
        return None, None  # another space, or no line of this statistic
    if t.space_id != space.id:
        return None, None
    return t, (f"this folder's {own.name}" if ref == str(own) else
               f"the shipped table {shipped} (another machine's)")


def _measured(run: RunFolder, statistic: str, summary: Mapping[str, Any] | None = None,
              baselines: Mapping[str, Any] | None = None) -> dict[tuple[str, ...], float]:
    """Measured ms by network (choices) of one backend and precision of the folder, in
    ``statistic``: its baselines' networks, then its engines (an engine file's figure wins
    over the same network's fresh-weight one). Read from the files when not given."""
    from ..errors import UserError
    from ..runfiles import read_baselines, read_summary

    try:
        if summary is None and run.summary.is_file():
            summary = read_summary(run.summary)
        if baselines is None and run.baselines.is_file():
            baselines = read_baselines(run.baselines)
    except UserError:
        return {}
    out: dict[tuple[str, ...], float] = {}
    if baselines and baselines.get("statistic", statistic) == statistic:
        for n in baselines.get("networks") or []:
            if isinstance(n.get("measured_ms"), (int, float)) and n["measured_ms"] > 0:
                out[tuple(n["choices"])] = float(n["measured_ms"])
    if summary and (summary.get("statistic") or statistic) == statistic:
        for r in summary.get("results") or []:
            if isinstance(r.get("measured_ms"), (int, float)) and r["measured_ms"] > 0:
                out[tuple(r["choices"])] = float(r["measured_ms"])
    return out


def _pred(space: Any, table: Any, choices: tuple[str, ...] | list[str]) -> float:
    from ..arch import Architecture

    return float(table.predict(Architecture.of(space, list(choices)), space).latency_ms)


def _engine_row(space: Any, dev: Any, fp32_dev: Any, fp32_ms: Mapping[tuple[str, ...], float],
                r: Mapping[str, Any]) -> dict[str, Any]:
    """One engine beside fp32: its measured and predicted ms, the fp32 figure of the same
    network (measured by the fp32 run, else predicted by the fp32 table) and both ratios."""
    from ..tables.compare import precision_verdict

    ch = tuple(r["choices"])
    pred = _pred(space, dev, ch)
    fp32_pred = _pred(space, fp32_dev, ch) if fp32_dev is not None else None
    meas = r.get("measured_ms")
    fp32, basis = (fp32_ms[ch], "measured") if ch in fp32_ms else (fp32_pred, "predicted")
    ratio = meas / fp32 if isinstance(meas, (int, float)) and fp32 else None
    return {"budget_ms": r["budget_ms"], "choices": list(ch), "measured_ms": meas,
            "predicted_ms": pred, "fp32_ms": fp32, "fp32_basis": basis,
            "fp32_predicted_ms": fp32_pred, "measured_ratio": ratio,
            "predicted_ratio": pred / fp32_pred if fp32_pred else None,
            "verdict": precision_verdict(ratio, "on this machine, measured")
            if ratio is not None else None}
