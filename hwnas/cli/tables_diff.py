"""``hwnas tables diff A B``: two device tables of one space, block by block and by rank.

The block-by-block ratios (``hwnas.tables.compare``) say how far the figures differ; the
rank view (``hwnas.tables.crossruntime``) says whether the difference matters to a
search: Kendall tau of block costs (overall and per layer) and which frontier networks
change between the tables. Registered by ``hwnas.cli.tables`` (this module defines no
top-level command).
"""

from __future__ import annotations

from ._output import add_json_flag, console, emit, fmt, table


def register_diff(actions) -> None:
    df = actions.add_parser("diff", help="compare two tables of one space: block ratios, "
                            "Kendall tau of block costs, frontier networks that change")
    df.add_argument("a", metavar="TABLE_A", help="a table file or a shipped table name")
    df.add_argument("b", metavar="TABLE_B", help="a table file or a shipped table name")
    df.add_argument("--accuracy", metavar="ACC", default=None,
                    help="accuracy table scoring the frontiers (default: block "
                         "multiply-accumulates as a stand-in score)")
    df.add_argument("--space", metavar="NAME|FILE", default=None,
                    help="the tables' space, for custom-space tables")
    df.add_argument("--top", type=int, default=10, metavar="N",
                    help="largest block differences to list (default 10)")
    add_json_flag(df)
    df.set_defaults(func=cmd_diff)


def _space(args, a, b):
    from ..spaces import find_space_by_id, load_space

    if args.space:
        return load_space(args.space)
    sid = a.space_id or b.space_id
    return find_space_by_id(sid) if sid else None


def cmd_diff(args) -> int:
    from ..errors import UserError
    from ..tables.compare import diff_tables
    from ..tables.crossruntime import compare_runtimes
    from ..tables.device import load_device_table

    if args.top < 0:
        raise UserError("--top must be >= 0")
    a, b = load_device_table(args.a), load_device_table(args.b)
    space = _space(args, a, b)
    acc = None
    if args.accuracy:
        from ..tables import load_accuracy_table

        acc = load_accuracy_table(args.accuracy, space)
    d = {"a": args.a, "b": args.b, **diff_tables(a, b, args.top),
         **compare_runtimes(a, b, space, acc)}
    emit(args, d, _human)
    return 0


def _human(d) -> None:
    c = console()
    c.print(f"{d['compared']} common blocks; median ratio B/A "
            f"{fmt('ratio', d['median_ratio'])}; "
            f"within 5%: {fmt('within', d['within_5pct'])}; "
            f"within 10%: {fmt('within', d['within_10pct'])}; "
            f"only in A: {len(d['only_in_a'])}; only in B: {len(d['only_in_b'])}")
    r = d["rank"]
    tau = "n/a" if r["kendall_tau"] is None else f"{r['kendall_tau']:.3f}"
    line = f"Kendall tau of block costs: {tau} over {r['blocks']} blocks"
    if r.get("layer_tau_mean") is not None:
        line += (f"; per layer mean {r['layer_tau_mean']:.3f}, lowest "
                 f"{r['layer_tau_min']:.3f}")
    c.print(line)
    f = d["frontier"]
    if "error" in f:
        c.print(f"frontier: not compared ({f['error']})")
    else:
        c.print(f"frontier ({f['score']}): {f['points_a']} points under A, {f['points_b']} "
                f"under B, {f['common_points']} on both; picks changed at "
                f"{f['picks_changed']} of {len(f['picks'])} budgets")
        table("picks at the same place of each table's latency range",
              ["position", "A budget ms", "B budget ms", "same pick", "A's pick on B ms",
               "fits B's budget", "B's pick scores more by"],
              [[f"{p['position']:.2f}", f"{p['budget_a_ms']:.4f}", f"{p['budget_b_ms']:.4f}",
                "yes" if p["same"] else "no", f"{p['pick_a_on_b_ms']:.4f}",
                "yes" if p["pick_a_within_b_budget"] else "no",
                "n/a" if p["score_gap"] is None else f"{100 * p['score_gap']:.2f}%"]
               for p in f["picks"]])
    table("largest differences", ["block", "A ms", "B ms", "B/A"],
          [[x["block"], f"{x['a_ms']:.4f}", f"{x['b_ms']:.4f}", f"{x['ratio']:.3f}"]
           for x in d["largest"]])
