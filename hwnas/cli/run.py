"""``hwnas run``: the main job, end to end (see :mod:`hwnas.pipeline`)."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from ..run.results import RunResult, RunSummary
from ._figures import add_statistic_flag
from ._request_flags import (add_old_quantization_alias, add_quantization_flags,
                             add_train_device_flag)
from ._output import add_json_flag, console, emit, table


def register_report(sub) -> None:
    p = sub.add_parser("report", help="(re)draw report.html and its PNG figures of a finished "
                       "hwnas run folder (offline: nothing fetched)")
    p.add_argument("out", metavar="DIR", help="the --out folder of hwnas run")
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    add_json_flag(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from ..report import write_report
    from ..run.folder import RunFolder

    path = write_report(RunFolder.for_backend(args.out, args.backend, args.precision))
    emit(args, {"report": str(path)}, lambda d: console().print(f"wrote {d['report']}"))
    return 0


def register(sub) -> None:
    register_report(sub)
    p = sub.add_parser("run", help="main job: accuracy table, device table, frontier, engine "
                       "files with predicted vs measured latency")
    p.add_argument("--space", default="tiny-32", metavar="NAME|FILE")
    p.add_argument("--data", default="digits", metavar="digits|digits-hard|FOLDER|FILE.npz")
    p.add_argument("--backend", default="onnxruntime", metavar="B",
                   help="engine backend: onnxruntime (default), openvino, tensorrt, torch-aoti, "
                        "executorch, litert")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"),
                   help="engine precision; the device table is profiled in the same one")
    add_quantization_flags(p, default="auto")
    add_old_quantization_alias(p, "--int8")
    p.add_argument("--qat-steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget-ms", default="", metavar="X[,Y...]",
                   help="latency budgets (default: three spread over the frontier)")
    p.add_argument("--budget-margin", default="auto", metavar="PCT|auto",
                   help="share of each budget kept free for prediction error: a network is "
                        "chosen within budget / (1 + PCT/100); auto (default): the device "
                        "table's worst held-out calibration error, at least 3%%")
    p.add_argument("--epochs", type=int, default=20, help="supernet meta-training epochs")
    p.add_argument("--later-paths", type=int, default=8,
                   help="stage-2 context paths per layer (accuracy-table quality vs time)")
    p.add_argument("--finetune-steps", type=int, default=150,
                   help="fine-tuning steps of each chosen network")
    p.add_argument("--seed", type=int, default=0)
    add_train_device_flag(p, "where the supernet trains (the engines run on --backend)")
    p.add_argument("--quick", action="store_true", help="short measurement protocol (noisier)")
    add_statistic_flag(p)
    p.add_argument("--no-recalibrate", action="store_true",
                   help="keep the device table's calibration as profiled (default: refit it "
                        "on 8 networks of this run's frontier and 8 random ones, measured "
                        "together, before engines are chosen)")
    p.add_argument("--out", default="runs/default", metavar="DIR")
    add_json_flag(p)
    p.set_defaults(func=cmd_run)


def _budgets(text: str) -> tuple[float, ...]:
    from ._output import numbers

    return numbers(text, "--budget-ms")


def _margin(text: str) -> "float | None":
    from ..errors import UserError

    if text == "auto":
        return None
    try:
        v = float(text.rstrip("%"))
    except ValueError:
        raise UserError(f"--budget-margin takes a percentage or auto, got {text!r}") from None
    if not 0 <= v < 100:
        raise UserError(f"--budget-margin must be in [0, 100), got {text}")
    return v / 100.0


def _acc(test, val) -> str:
    """Test accuracy (held out); the validation figure only when there is no test split."""
    if test is not None:
        return f"{100 * test:.1f}%"
    return "-" if val is None else f"{100 * val:.1f}% (val)"


def _ms(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def cmd_run(args: argparse.Namespace) -> int:
    import sys

    from ._torch import passive_openmp

    passive_openmp()

    from ..pipeline import RunConfig, run_pipeline

    cfg = RunConfig(space=args.space, data=args.data, backend=args.backend,
                    precision=args.precision, quantization=args.quantization,
                    ptq=args.ptq_with, qat_steps=args.qat_steps,
                    threads=args.threads, budgets_ms=_budgets(args.budget_ms),
                    budget_margin=_margin(args.budget_margin),
                    epochs=args.epochs, later_paths=args.later_paths,
                    finetune_steps=args.finetune_steps, seed=args.seed, quick=args.quick,
                    train_device=args.train_device, statistic=args.statistic,
                    recalibrate=not args.no_recalibrate)
    c = console()
    say = (lambda s: None) if args.json else (lambda s: c.print(f"[bold cyan]hwnas run[/]: {s}"))
    if sys.stderr.isatty():
        from ._output import stage_progress

        bars, update = stage_progress()
        with bars:  # one bar per stage; say() lines print above them
            summary = run_pipeline(cfg, args.out, say, update)
    else:
        summary = run_pipeline(cfg, args.out, say, _LogProgress())
    emit(args, summary.to_json(), lambda d: (_human(summary), _beside_fp32(summary, args.out)))
    return _checks(summary.results)


class _LogProgress:
    """Progress for a log file or CI: a plain line at most every 15 s (and at the end of a
    stage), so a long run is never silent (a terminal gets rich bars instead)."""

    def __init__(self) -> None:
        import time

        self.t0 = self.last_line = time.monotonic()
        self.last_line -= 15
        self.done: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        import sys
        import time

        if self.done.get(stage) == done:
            return
        self.done[stage] = done
        now = time.monotonic()
        if done >= total or now - self.last_line >= 15:
            self.last_line = now
            sys.stderr.write(f"hwnas run: {stage} {done}/{total} "
                             f"({now - self.t0:.0f} s elapsed)\n")
            sys.stderr.flush()


def _row(r: RunResult) -> list[Any]:
    return [r.budget_ms, ",".join(r.choices), _ms(r.predicted_ms),
            f"{_ms(r.measured_ms)} ({_ms(r.measured_spread_ms)})",
            "-" if r.prediction_error is None else f"{100 * r.prediction_error:+.1f}%",
            {True: "yes", False: "NO"}.get(r.meets_budget, "-"),
            "-" if r.predicted_accuracy is None else f"{100 * r.predicted_accuracy:.1f}%",
            _acc(r.test_accuracy, r.val_accuracy),
            f"{r.parity_max_abs_diff:.1e} / {100 * (r.top1_agreement or 0):.0f}% top-1"]


def _human(s: RunSummary) -> None:
    c = console()
    table(f"{s.space} on {s.backend} {s.precision}: engines "
          f"(latency: {s.statistic or 'median'})", [
              "budget ms", "architecture", "predicted ms", "measured ms (IQR)", "error",
              "meets", "pred. acc", "test acc", "parity"], [_row(r) for r in s.results])
    for r in s.results:
        c.print(f"  {r.engine}")
    down = [r for r in s.results if r.steps_down]
    if down:
        c.print("  stepped down after a measured miss: " + "; ".join(
            f"{r.budget_ms:g} ms ({r.steps_down} step(s) from {','.join(r.first_choices)})"
            for r in down))
    m = s.budget_margin or {}
    if m:
        c.print(f"  each network was chosen within its budget less a "
                f"{100 * m['value']:.1f}% margin ({m['from']})")
    drift = [r.host_drift for r in s.results if r.host_drift is not None]
    if drift and max(abs(x) for x in drift) > 0.05:
        c.print(f"  note: the host ran the reference graph {100 * min(drift):+.0f}% to "
                f"{100 * max(drift):+.0f}% against the table's profiling run while the "
                "engines were measured: part of each error is the host's phase, not the table")
    for line in calibration_lines(s.calibration):
        c.print(f"  {line}")
    if s.report:
        c.print(f"report: {s.report}")


def calibration_lines(cal: "dict[str, Any] | None") -> list[str]:
    """The run's recalibration and each group's error, in plain lines."""
    if not cal:
        return []
    st = cal.get("status")
    if st == "skipped":
        out = [f"device table not recalibrated on this run's frontier ({cal.get('why')})"]
    else:
        out = [f"device table {'recalibrated' if st == 'recalibrated' else 'recalibrated earlier'}"
               f" on {cal.get('frontier_nets')} networks of this run's frontier and "
               f"{cal.get('random_nets')} random ones, measured together"
               + (f" ({cal['seconds']:.0f} s)" if st == "recalibrated" else f" ({cal.get('date')})")]
    groups = [(f"{g} (held out)", e) for g, e in (cal.get("groups") or {}).items()] + \
        [(f"{g} (measured by this run)", e) for g, e in (cal.get("observed") or {}).items()]
    out += [f"  {g}: {e.get('nets')} networks, median error {e['median_abs_err_pct']:.1f}%, "
            f"{100 * e['within_5pct']:.0f}% within 5%, max {e['max_abs_err_pct']:.1f}%"
            for g, e in groups if e]
    return out


def _beside_fp32(s: RunSummary, out: str) -> None:
    """For an int8 or fp16 run, each engine's prediction beside the fp32 one of the same
    network: from this folder's fp32 device table when an fp32 run left one, else the
    shipped fp32 table of the runtime (another machine's; the ratio still tells)."""
    import warnings

    from ..arch import Architecture
    from ..errors import HwnasWarning, UserError
    from ..run.folder import RunFolder
    from ..tables.device import load_device_table, shipped_table_path
    from ._figures import precision_line

    if s.precision == "fp32" or not s.results:
        return
    own = RunFolder.for_backend(out, s.backend, "fp32").device_table
    shipped = f"{s.space}_{RunFolder.for_backend(out, s.backend, 'fp32').profiler}_cpu_fp32"
    ref = own if own.is_file() else shipped if shipped_table_path(shipped) else None
    if ref is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HwnasWarning)
            fp32 = load_device_table(ref).for_statistic(s.statistic)
        c = console()
        c.print(f"  beside fp32 ({'this folder' if ref == own else 'the shipped table'} {ref}):")
        for r in s.results:
            arch = Architecture.load(f"{s.space}:{','.join(r.choices)}")
            c.print(f"  {r.budget_ms:g} ms:" + precision_line(
                s.precision, r.predicted_ms or 0.0, fp32.predict(arch).latency_ms,
                fp32.figure))
    except UserError:
        return  # no comparable fp32 figure (another space or statistic): nothing to say


def _checks(rows: Sequence[RunResult]) -> int:
    """``CHECK_FAILED`` (one line on stderr) when an engine missed its parity criterion or is
    still over its budget after the step-downs; 0 otherwise."""
    import sys

    from ..errors import CHECK_FAILED

    failed = [f"{r.budget_ms:g} ms: " + ", ".join(
        why for why, bad in (("parity not met", r.parity_ok is False),
                             ("over its budget", r.meets_budget is False)) if bad)
        for r in rows if r.parity_ok is False or r.meets_budget is False]
    if not failed:
        return 0
    sys.stderr.write(f"hwnas: check failed: {'; '.join(failed)} (exit {CHECK_FAILED})\n")
    return CHECK_FAILED
