"""What every printed latency names: its statistic, and a lower precision's fp32 figure."""

from __future__ import annotations

STATISTICS = ("floor", "median", "p90")


def add_statistic_flag(p) -> None:
    p.add_argument("--statistic", choices=STATISTICS, default=None,
                   help="the statistic latencies are predicted and budgets checked in: floor "
                   "(mean of the 3 fastest calls: repeatable), median, p90 (each with its own "
                   "calibration line); default: the table's own")


def precision_line(precision: "str | None", ms: float, fp32_ms: float, statistic: str) -> str:
    """One line comparing a lower precision's prediction with fp32's, saying it plainly when
    the lower precision is not faster (int8 often is not for small networks on CPUs)."""
    from ..tables.compare import precision_verdict

    ratio = ms / fp32_ms if fp32_ms > 0 else float("nan")
    verdict = precision_verdict(ratio)
    return (f"  {precision} {ms:.3f} ms vs fp32 {fp32_ms:.3f} ms predicted ({statistic}): "
            f"{ratio:.2f}x, {verdict}")
