"""``hwnas evolve``: a genetic search with supernet fine-tuning, per latency budget."""

from __future__ import annotations

from ._output import add_json_flag, check_out, console, emit, numbers, table


def _floats(text: str, flag: str) -> tuple[float, ...]:
    from ..errors import UserError

    vals = numbers(text, flag)
    if not vals:
        raise UserError(f"{flag} needs at least one number")
    return vals


def register(sub) -> None:
    p = sub.add_parser(
        "evolve", help="genetic search with supernet fine-tuning (Yuan, Xue, Zhang 2023)",
        description="A genetic search over the supernet's architectures per budget: fitness is "
                    "the inherited-weight validation accuracy, the supernet is fine-tuned on "
                    "the population's region between generations, infeasible children are "
                    "repaired with the device table's layer costs. One folder per budget "
                    "(best_arch.json, evolve.json with the history, supernet_finetuned.pt); "
                    "a rerun resumes from the last finished generation.")
    p.add_argument("--supernet", required=True, metavar="CKPT", help="supernet checkpoint (hwnas train)")
    p.add_argument("--table", required=True, metavar="T",
                   help="device table: a file or the name of a shipped table")
    p.add_argument("--budget-ms", required=True, metavar="X[,Y...]", help="latency budgets")
    p.add_argument("--data", default="digits", metavar="digits|digits-hard|FOLDER|FILE.npz",
                   help="the data the supernet was trained on (split as in its training)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--generations", type=int, default=6)
    p.add_argument("--parents", type=int, default=6, help="the best kept each generation")
    p.add_argument("--finetune-steps", type=int, default=40,
                   help="supernet fine-tuning steps between generations (0: a plain GA)")
    p.add_argument("--levels", default="1", metavar="F[,F...]",
                   help="hierarchical proxy: validation shares scored in turn, e.g. "
                        "0.25,0.5,1 (default 1: every candidate on the full set)")
    p.add_argument("--keep", type=float, default=0.5,
                   help="share of a level's candidates promoted to the next (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    add_json_flag(p)
    p.set_defaults(func=cmd_evolve)


def cmd_evolve(args) -> int:
    from ._torch import passive_openmp

    passive_openmp()
    from ..errors import UserError
    from ..tables import load_device_table
    from ..train.checkpoint import load_checkpoint
    from ..train.evolve import EvolveConfig, evolve

    budgets = _floats(args.budget_ms, "--budget-ms")
    if any(not b > 0 or b != b or b == float("inf") for b in budgets):
        raise UserError("--budget-ms: budgets must be positive, finite numbers of ms")
    cfg = EvolveConfig(population=args.population, generations=args.generations,
                       parents=args.parents, finetune_steps=args.finetune_steps,
                       levels=_floats(args.levels, "--levels"), keep=args.keep, seed=args.seed)
    dev = load_device_table(args.table)
    ck = load_checkpoint(args.supernet)
    check_out(args.out, True, "--out", folder=True)  # an existing folder resumes
    data = ck.data_split(args.data, source=f"checkpoint {args.supernet}")
    from pathlib import Path

    from ..train.evolve import Repair

    for b in budgets:  # every budget checked before the first search starts
        Repair(ck.target, dev, b)
    say = (lambda s: None) if args.json else (lambda s: console().print(f"hwnas evolve: {s}"))
    rows = []
    for b in budgets:
        st = evolve(args.supernet, dev, b, data, Path(args.out) / f"budget_{b:g}ms", cfg, say)
        rows.append({"budget_ms": b, "best": st["best"], "best_score": st["best_score"],
                     "predicted_ms": st["best_latency_ms"],
                     "folder": str((Path(args.out) / f"budget_{b:g}ms").absolute()),
                     "evaluations": st["costs"]["evaluations"],
                     "eval_images": st["costs"]["eval_images"],
                     "train_images": st["costs"]["train_images"],
                     "seconds": round(st["costs"]["seconds"], 1)})
    emit(args, {"supernet": args.supernet, "table": args.table, "config": cfg.to_dict(),
                "results": rows}, _human)
    return 0


def _human(d) -> None:
    table("genetic search with supernet fine-tuning",
          ["budget ms", "architecture", "predicted ms", "val acc", "evaluations", "seconds"],
          [[r["budget_ms"], ",".join(r["best"]), f"{r['predicted_ms']:.4f}",
            f"{100 * r['best_score']:.1f}%", r["evaluations"], r["seconds"]]
           for r in d["results"]])
