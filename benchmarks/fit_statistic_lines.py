"""Give the shipped device tables their median and p90 lines, fitted on the calibration
networks each table already recorded (nothing is measured again), and print each line's
held-out (leave-one-out) error beside the table's own statistic.

    python benchmarks/fit_statistic_lines.py [--write]
"""

from __future__ import annotations

import sys
import warnings

from hwnas.errors import HwnasWarning, UserError
from hwnas.recalibration import add_statistic_lines
from hwnas.tables.device import load_device_table, shipped_table_path, shipped_tables


def main(write: bool) -> int:
    warnings.simplefilter("ignore", HwnasWarning)
    print(f"{'table':42s} {'stat':7s} {'fitted':>6s} {'loo<=5%':>8s} {'loo<=10%':>8s} "
          f"{'loo median %':>12s}")
    for name in shipped_tables():
        table = load_device_table(name)
        try:
            new = add_statistic_lines(table)
        except UserError as exc:
            print(f"{name:42s} skipped: {exc}")
            continue
        rep = dict(new.calibration.report)
        rows = [(table.figure, dict(rep, fitted_on=new.calibration.fitted_on))]
        rows += sorted((rep.get("lines") or {}).items())
        for stat, d in rows:
            print(f"{name:42s} {stat:7s} {d.get('fitted_on') or 0:6d} "
                  f"{100 * (d.get('loo_within_5pct') or 0):7.0f}% "
                  f"{100 * (d.get('loo_within_10pct') or 0):7.0f}% "
                  f"{d.get('loo_median_abs_err_pct') or float('nan'):12.2f}")
        if write:
            new.save(shipped_table_path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main("--write" in sys.argv))
