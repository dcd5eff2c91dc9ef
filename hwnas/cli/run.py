"""``hwnas run``: the main job, end to end (see :mod:`hwnas.pipeline`)."""

from __future__ import annotations

from ._output import add_json_flag, console, emit, table


def register(sub) -> None:
    p = sub.add_parser("run", help="main job: accuracy table, device table, frontier, deployable "
                       "ONNX networks with predicted vs measured latency")
    p.add_argument("--space", default="tiny-32", metavar="NAME|FILE")
    p.add_argument("--data", default="digits", metavar="digits|FOLDER|FILE.npz")
    p.add_argument("--backend", default="onnxruntime", metavar="B")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget-ms", default="", metavar="X[,Y...]",
                   help="latency budgets (default: three spread over the frontier)")
    p.add_argument("--epochs", type=int, default=20, help="supernet meta-training epochs")
    p.add_argument("--later-paths", type=int, default=12,
                   help="stage-2 context paths per layer (accuracy-table quality vs time)")
    p.add_argument("--finetune-steps", type=int, default=150,
                   help="fine-tuning steps of each chosen network")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="short measurement protocol (noisier)")
    p.add_argument("--out", default="runs/default", metavar="DIR")
    add_json_flag(p)
    p.set_defaults(func=cmd_run)


def _budgets(text: str) -> tuple[float, ...]:
    from ..errors import UserError

    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UserError(f"--budget-ms takes numbers separated by commas, got {text!r}") from None


def cmd_run(args) -> int:
    import os
    import sys

    # passive OpenMP waiting on shared cores (see hwnas.cli.train); only before torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from ..pipeline import RunConfig, run_pipeline

    cfg = RunConfig(space=args.space, data=args.data, backend=args.backend,
                    threads=args.threads, budgets_ms=_budgets(args.budget_ms),
                    epochs=args.epochs, later_paths=args.later_paths,
                    finetune_steps=args.finetune_steps, seed=args.seed, quick=args.quick)
    c = console()
    say = (lambda s: None) if args.json else (lambda s: c.print(f"[bold cyan]hwnas run[/]: {s}"))
    last: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.json or not sys.stderr.isatty():
            return
        if last.get(stage) != done:
            last[stage] = done
            sys.stderr.write(f"\r  {stage}: {done}/{total}   ")
            if done >= total:
                sys.stderr.write("\n")

    summary = run_pipeline(cfg, args.out, say, progress)

    def human(d) -> None:
        table(f"{d['space']} on {d['backend']}: chosen networks", [
            "budget ms", "architecture", "predicted ms", "measured ms", "error", "val acc",
            "ONNX parity"],
            [[r["budget_ms"], ",".join(r["choices"]), f"{r['predicted_ms']:.3f}",
              f"{r['measured_ms']:.3f}", f"{100 * r['prediction_error']:+.1f}%",
              f"{100 * r['val_accuracy']:.1f}%", f"{r['parity_max_abs_diff']:.1e}"]
             for r in d["results"]])
        c.print(f"manifests, ONNX files and tables under {args.out}")

    emit(args, summary, human)
    return 0
