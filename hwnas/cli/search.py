"""``hwnas search``: the best architecture per latency budget from an accuracy and a
device table (exact knapsack by default; evolutionary or random search to compare)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._figures import add_statistic_flag, precision_line
from ._output import add_force_flag, add_json_flag, check_out, console, emit, table, warn


def register(sub) -> None:
    p = sub.add_parser("search", help="best architecture per latency budget (exact knapsack)",
                       description="Pick one candidate per layer: the highest summed accuracy "
                       "score within each latency budget, predicted by the device table.")
    p.add_argument("--accuracy", required=True, metavar="A",
                   help="accuracy table: JSON, or CSV 'layer,choice,score' (then --space)")
    p.add_argument("--table", required=True, metavar="T",
                   help="device table: a file or the name of a shipped table")
    p.add_argument("--budget-ms", metavar="X[,Y,...]",
                   help="latency budget(s) in ms, comma-separated: one architecture each")
    p.add_argument("--objective", choices=("accuracy", "latency", "loss"), default="accuracy",
                   help="accuracy: highest score within the budget; loss: least relative "
                   "accuracy loss (PONAS) within the budget; latency: fastest reaching --min-score")
    p.add_argument("--min-score", metavar="S[,S,...]",
                   help="score floor(s) for --objective latency")
    p.add_argument("--max-params", type=float, metavar="N", help="most parameters, whole network")
    p.add_argument("--max-macs", type=float, metavar="N",
                   help="most multiply-accumulates (MACs, what NAS papers call FLOPs), whole network")
    p.add_argument("--max-flops", type=float, dest="max_macs", help=argparse.SUPPRESS)  # old name
    p.add_argument("--max-memory", type=float, metavar="N",
                   help="most peak activation elements of any one block")
    p.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                   help="a limit by name (max_params, max_macs, max_memory); repeatable")
    p.add_argument("--method", choices=("exact", "evolution", "random"), default="exact",
                   help="exact knapsack (default), or a baseline to compare")
    p.add_argument("--seed", type=int, default=0, help="seed of the evolution/random baselines")
    p.add_argument("--frontier", metavar="FILE", help="write the whole Pareto frontier (JSON)")
    p.add_argument("--out", metavar="ARCH.json",
                   help="write the architecture; with several budgets one file each, "
                   "suffixed with the budget (ARCH_8ms.json)")
    p.add_argument("--space", metavar="NAME|FILE",
                   help="the space of a CSV accuracy table (default: the table's own space)")
    add_statistic_flag(p)
    p.add_argument("--strict", action="store_true",
                   help="exit 2 when any budget (or score floor) has no answer; by default the "
                   "others are answered and each infeasible one is reported (null in --json)")
    add_force_flag(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_search)


def _numbers(text: str | None, what: str) -> list[float]:
    from ..errors import UserError

    if text is None:
        return []
    out = []
    for part in str(text).split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            raise UserError(f"{what}: cannot read {part.strip()!r} as a number") from None
    if not out:
        raise UserError(f"{what}: give at least one number")
    return out


def _limits(args) -> dict[str, float]:
    from ..errors import UserError

    limits = {k: v for k in ("max_params", "max_macs", "max_memory")
              if (v := getattr(args, k)) is not None}
    for item in args.limit:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--limit {item!r}: expected NAME=N, e.g. max_params=5e6")
        limits[name.strip().replace("-", "_")] = _numbers(value, f"--limit {name}")[0]
    return limits


def _out_path(out: str, target: float, many: bool, unit: str) -> Path:
    p = Path(out)
    if not many:
        return p
    tag = f"{target:g}{unit}" if unit == "ms" else f"{unit}{target:g}"
    return p.with_name(f"{p.stem}_{tag}{p.suffix or '.json'}")


def cmd_search(args) -> int:
    from ..errors import UserError

    limits = _limits(args)
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    check_out(args.frontier, args.force, "--frontier")
    targets, cap, unit = _targets(args)
    for t in targets if args.out else ():  # every file --out will write, before any work
        check_out(str(_out_path(args.out, t, len(targets) > 1, unit)), args.force, "--out")
    acc, dev, fp32 = _search_tables(args)
    archs, front, cut = _solve(args, acc, dev, targets, cap, unit, limits)
    key = "min_score" if unit == "score" else "budget_ms"
    if all(isinstance(a, str) for a in archs):  # nothing to answer: bad input, exit 2
        raise UserError(archs[0])
    results = [_result(args, key, target, arch, unit, len(targets) > 1, acc, dev, fp32)
               for target, arch in zip(targets, archs)]
    doc = {"space": acc.space.name, "space_id": acc.space.id, "device": dev.describe_source(),
           "objective": args.objective, "method": args.method, "limits": limits,
           "results": results}
    if args.frontier:
        from ..solver import frontier

        whole = front if args.method == "exact" and cut is None else \
            frontier(acc, dev, objective=args.objective, **limits)
        whole.save(args.frontier)
        doc["frontier"] = {"file": str(args.frontier), "points": len(whole)}
    emit(args, doc, lambda d: _human(d, key, dev))
    missed = [r for r in results if r["choices"] is None]
    if missed and args.strict:
        sys.stderr.write(f"hwnas: error: {len(missed)} of {len(results)} targets have no answer "
                         f"(--strict): {missed[0]['infeasible']}\n")
        return 2
    return 0


def _targets(args) -> tuple[list[float], list[float], str]:
    """(targets, latency cap, the targets' unit): budgets in ms, or minimum scores for
    ``--objective latency`` (with at most one --budget-ms, a cap)."""
    from ..errors import UserError

    if args.objective == "latency":
        targets = _numbers(args.min_score, "--min-score")
        if not targets:
            raise UserError("--objective latency needs --min-score")
        cap = _numbers(args.budget_ms, "--budget-ms")
        if len(cap) > 1:
            raise UserError("--objective latency takes one --budget-ms (a cap), not a list")
        if args.method != "exact":
            raise UserError(f"--method {args.method} supports the accuracy and loss objectives")
        return targets, cap, "score"
    targets = _numbers(args.budget_ms, "--budget-ms")
    if not targets:
        raise UserError(f"--objective {args.objective} needs --budget-ms")
    if args.min_score is not None:
        raise UserError("--min-score goes with --objective latency")
    return targets, [], "ms"


def _search_tables(args):
    """The accuracy table, the device table in the asked statistic, and its fp32 sibling
    in the same statistic (None when there is none)."""
    from ..errors import UserError
    from ..spaces import find_space_by_id
    from ..tables import load_accuracy_table, load_device_table
    from ..tables.device import fp32_sibling

    table_file = load_device_table(args.table)
    warn(table_file.portability_warning(args.table))
    dev = table_file.for_statistic(args.statistic)
    fp32 = fp32_sibling(table_file, args.table)
    fp32 = fp32.for_statistic(dev.figure) if fp32 is not None and \
        dev.figure in fp32.statistics() else None
    space = args.space
    if space is None and str(args.accuracy).lower().endswith(".csv"):
        # a CSV carries no space: take the device table's own (built-in) space
        space = find_space_by_id(dev.space_id) if dev.space_id else None
        if space is None:
            raise UserError(f"{args.accuracy}: a CSV accuracy table needs its space (--space); "
                            f"the device table {args.table} names no built-in space")
    return load_accuracy_table(args.accuracy, space), dev, fp32


def _solve(args, acc, dev, targets: list[float], cap: list[float], unit: str,
           limits: dict[str, float]):
    """(an architecture or the reason there is none, per target; the frontier and the
    budget it was cut at, for the exact method)."""
    from ..solver import evolutionary_search, frontier, random_search

    front, cut = None, None
    if args.method == "exact":
        # one budget (or a cap): cut the frontier there, which prunes; else one serves all
        cut = cap[0] if cap else targets[0] if len(targets) == 1 and unit == "ms" else None
        front = frontier(acc, dev, objective=args.objective, budget_ms=cut, **limits)
        pick = front.fastest if unit == "score" else front.best
    else:
        searcher = evolutionary_search if args.method == "evolution" else random_search

        def pick(t):
            return searcher(acc, dev, t, objective=args.objective, seed=args.seed,
                            **limits).architecture
    return _answers(pick, targets), front, cut


def _result(args, key: str, target: float, arch, unit: str, many: bool, acc, dev, fp32
            ) -> dict:
    """One target's row: its architecture and figures (written to --out), or why there is
    none (this target alone is infeasible: the rest are answered)."""
    if isinstance(arch, str):
        return {key: target, "choices": None, "infeasible": arch}
    row = {key: target,
           "choices": list(arch.choices), "notation": arch.notation(),
           "latency_ms": arch.latency_ms, "statistic": dev.figure,
           **({"fp32_latency_ms": fp32.predict(arch, acc.space).latency_ms} if fp32 else {}),
           "score": arch.score, "macs": arch.macs,
           "params": arch.params, "relative_loss": dict(arch.extra).get("relative_loss")}
    if args.out:
        row["out"] = str(arch.save(_out_path(args.out, target, many, unit)))
    return row


def _human(d: dict, key: str, dev) -> None:
    feasible = [r for r in d["results"] if r["choices"] is not None]
    table(f"{d['space']} on {d['device']} ({d['objective']}, {d['method']})",
          [key, f"latency ms ({dev.figure})", "score", "M MACs", "M params", "choices"],
          [[r[key], f"{r['latency_ms']:.4f}", f"{r['score']:.6g}", f"{r['macs'] / 1e6:.1f}",
            f"{r['params'] / 1e6:.3f}", " ".join(r["choices"])] for r in feasible])
    for r in d["results"]:
        if r["choices"] is None:
            warn(f"{key} {r[key]:g}: no answer: {r['infeasible']}")
        elif r.get("fp32_latency_ms") is not None:
            console().print(f"{key} {r[key]:g}:" + precision_line(
                dev.meta.get("precision"), r["latency_ms"], r["fp32_latency_ms"],
                dev.figure))
        if "out" in r:
            console().print(f"wrote {r['out']}")
    if "frontier" in d:
        console().print(f"wrote {d['frontier']['points']} frontier points to "
                        f"{d['frontier']['file']}")


def _answers(pick, targets: list[float]) -> list:
    """``pick(t)`` for each target, or the one-line reason it has no answer (a string)."""
    from ..solver.problem import SolverError

    out: list = []
    for t in targets:
        try:
            out.append(pick(t))
        except SolverError as exc:
            out.append(str(exc))
    return out
