"""The run's device table, calibrated where the run makes its decisions.

Before engines are chosen, the folder's device table is fitted again on whole networks of
the run's own frontier (its accuracy table) measured together with random ones
(:func:`hwnas.recalibration.recalibrate_table`): the networks a search picks are not
random ones, and a line fitted on random networks alone predicted one int8 frontier 14-15%
high. After the engines are timed, every network the run measured (the engine files, the
chosen networks and the baselines) is recorded in the table as observed, predicted beside
measured, apart from the networks the line was fitted on (``meta.observed``, read by
:meth:`hwnas.tables.device.DeviceTable.error_groups`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .folder import RunFolder

BY = "hwnas run"


def recalibrate_for_run(enabled: bool, seed: int, quick: bool, space: Any, run: RunFolder,
                        table_path: Path, acc: Any, say: Callable[[str], None],
                        progress: Any = None) -> dict[str, Any]:
    """The folder's table refitted on the run's frontier (``acc``) and random networks, or
    the refit an earlier run of the same accuracy table left, or why there is none; returns
    what happened, for the summary (``status``: ``recalibrated``, ``reused``, ``skipped``)."""
    from ..recalibration import (DEFAULT_FRONTIER_NETS, RUN_RANDOM_NETS, frontier_calibrated,
                                 needs_onnx_networks, recalibrate_table, summary_of)
    from ..tables.device import load_device_table

    if not enabled:
        say("device table: not recalibrated on this run's frontier (--no-recalibrate)")
        return {"status": "skipped", "why": "--no-recalibrate"}
    table = load_device_table(table_path, check_machine=False)
    why = needs_onnx_networks(str(table.meta.get("backend", "")))
    if why:
        say(f"device table: not recalibrated on this run's frontier ({why})")
        return {"status": "skipped", "why": why}
    sha = hashlib.sha256(run.accuracy_table.read_bytes()).hexdigest()
    recs = list(table.meta.get("recalibrations") or [])
    last = recs[-1] if recs and isinstance(recs[-1], Mapping) else {}
    if last.get("by") == BY and last.get("accuracy_sha256") == sha and frontier_calibrated(table):
        say(f"device table: reusing its recalibration on this run's frontier ({last.get('date')})")
        return {"status": "reused", **summary_of(last)}
    say(f"device table: recalibrating on {DEFAULT_FRONTIER_NETS} networks of this run's "
        f"frontier and {RUN_RANDOM_NETS} random ones, measured together")
    rec = recalibrate_table(table_path, table_path, RUN_RANDOM_NETS, seed + 1, quick, space,
                            progress, DEFAULT_FRONTIER_NETS, acc, by=BY,
                            note={"accuracy_table": str(run.accuracy_table),
                                  "accuracy_sha256": sha})
    said = summary_of(rec)
    say("device table: held-out error by group: " + "; ".join(
        f"{g} {e['median_abs_err_pct']:.1f}% median, {100 * e['within_5pct']:.0f}% within 5%"
        for g, e in said["groups"].items() if e))
    return {"status": "recalibrated", **said}


def record_observed(table_path: Path, run: RunFolder, dev: Any, space: Any,
                    engines: Sequence[tuple[str, Sequence[str], float | None]],
                    baselines: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every network the run measured, written into the folder's table as observed
    (``meta.observed[tag]``, replacing this backend's previous record): the engine files
    (``engines``: label, choices, measured ms), the chosen networks and the baselines
    (from ``baselines``), each predicted by ``dev`` (the run's statistic) beside its
    measurement. Returns each group's error."""
    import datetime as _dt
    from dataclasses import replace

    from ..arch import Architecture
    from ..tables.device import load_device_table

    rows = [("engines", label, list(ch), ms) for label, ch, ms in engines]
    for r in (baselines or {}).get("networks") or []:
        group = "chosen" if r.get("kind") == "chosen" else "baselines"
        rows.append((group, str(r.get("label")), list(r["choices"]), r.get("measured_ms")))
    nets = []
    for group, label, ch, ms in rows:
        if not isinstance(ms, (int, float)) or ms <= 0:
            continue  # not measured (failed): nothing to compare
        pred = dev.predict(Architecture.of(space, ch), space).latency_ms
        nets.append({"group": group, "label": label, "choices": ch,
                     "predicted_ms": round(pred, 6), "measured_ms": round(float(ms), 6),
                     "error": round((pred - ms) / ms, 6)})
    groups = _group_reports(nets)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    table = load_device_table(table_path, check_machine=False)
    meta = dict(table.meta)
    observed = dict(meta.get("observed") or {})
    observed[run.tag] = {"by": BY, "date": now, "folder": str(run.root),
                         "statistic": dev.figure, "groups": groups, "networks": nets}
    meta["observed"] = observed
    replace(table, meta=meta).save(table_path)
    return groups


def _group_reports(nets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per group, the networks' count and the share within 5% and 10%, median and max
    absolute error (in %), the way the calibration reports its own."""
    import numpy as np

    out = {}
    for g in dict.fromkeys(n["group"] for n in nets):
        a = np.abs([n["error"] for n in nets if n["group"] == g])
        out[g] = {"nets": int(a.size), "within_5pct": float(np.mean(a <= 0.05)),
                  "within_10pct": float(np.mean(a <= 0.10)),
                  "median_abs_err_pct": float(100 * np.median(a)),
                  "max_abs_err_pct": float(100 * a.max())}
    return out
