"""Compare two device tables block by block (``hwnas tables diff``), and a lower
precision's latency with fp32's in words."""

from __future__ import annotations

import statistics
from typing import Any

from .device import DeviceTable


def diff_tables(a: DeviceTable, b: DeviceTable, top: int = 10) -> dict[str, Any]:
    """Per common block the ratio b/a of the tables' figures (each its own statistic, named
    in the result); shares within 5% and 10%; the outliers."""
    common = sorted(k for k in set(a.entries) & set(b.entries)
                    if a.entries[k].ok and b.entries[k].ok)
    rows: list[dict[str, Any]] = []
    for k in common:
        va = float(a.entries[k].value(a.figure_field))  # type: ignore[arg-type]
        vb = float(b.entries[k].value(b.figure_field))  # type: ignore[arg-type]
        if va <= 0 or vb <= 0:
            continue
        rows.append({"block": k, "a_ms": va, "b_ms": vb, "ratio": vb / va})
    rel = [abs(float(r["ratio"]) - 1.0) for r in rows]
    n = len(rows)
    return {
        "common": len(common), "compared": n, "figure_a": a.figure, "figure_b": b.figure,
        "only_in_a": sorted(set(a.entries) - set(b.entries)),
        "only_in_b": sorted(set(b.entries) - set(a.entries)),
        "failed_in_a": sorted(k for k, s in a.entries.items() if not s.ok),
        "failed_in_b": sorted(k for k, s in b.entries.items() if not s.ok),
        "median_ratio": statistics.median([float(r["ratio"]) for r in rows]) if rows else None,
        "within_5pct": sum(x <= 0.05 for x in rel) / n if n else None,
        "within_10pct": sum(x <= 0.10 for x in rel) / n if n else None,
        "largest": sorted(rows, key=lambda r: -abs(float(r["ratio"]) - 1.0))[:top],
    }


def precision_verdict(ratio: float, where: str = "on this table's device") -> str:
    """A lower precision's latency over fp32's in words, plain when it is not faster (int8
    often is not, for small networks on CPUs)."""
    if not ratio == ratio:  # nan: nothing to compare
        return "no comparison"
    return ("faster" if ratio < 0.98 else f"SLOWER than fp32 {where}" if ratio > 1.02
            else "about as fast as fp32")
