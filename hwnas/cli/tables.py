"""``hwnas tables list|show|diff|import`` and ``hwnas predict``."""

from __future__ import annotations

from ._figures import add_statistic_flag, precision_line
from ._output import (add_force_flag, add_json_flag, check_out, console, emit, fields, table,
                      warn)
from .tables_diff import register_diff


def register(sub) -> None:
    p = sub.add_parser("tables", help="device tables: list, show, diff, import foreign tables")
    s = p.add_subparsers(dest="tables_cmd", metavar="ACTION", required=True)
    ls = s.add_parser("list", help="device tables shipped with hwnas")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)
    sh = s.add_parser("show", help="one table: provenance and entries")
    sh.add_argument("table", metavar="TABLE", help="a table file or a shipped table name")
    add_json_flag(sh)
    sh.set_defaults(func=cmd_show)
    register_diff(s)
    im = s.add_parser("import", help="import a ProxylessNAS or once-for-all YAML lookup table")
    im.add_argument("file", metavar="FILE.yaml")
    im.add_argument("--format", required=True, choices=["proxylessnas", "ofa"])
    im.add_argument("--space", metavar="NAME|FILE",
                    help="space the table must serve (default: proxyless-mobile for proxylessnas)")
    im.add_argument("--out", required=True, metavar="TABLE.json")
    add_force_flag(im)
    add_json_flag(im)
    im.set_defaults(func=cmd_import)
    rc = s.add_parser("recalibrate", help="re-fit a table's calibration on a few whole "
                      "networks measured here (seconds; no block is re-profiled)")
    rc.add_argument("table", metavar="TABLE", help="a table file or a shipped table name")
    rc.add_argument("--nets", type=int, default=8, metavar="N",
                    help="random networks of the table's space to measure (default 8)")
    rc.add_argument("--seed", type=int, default=1, help="seed of the networks (default 1)")
    rc.add_argument("--frontier", type=int, default=0, metavar="N",
                    help="N more networks spread along the table's frontier, where a search "
                    "picks (by --accuracy, else block MACs as a stand-in score); each "
                    "group's error is reported apart")
    rc.add_argument("--accuracy", metavar="A", help="accuracy table whose frontier to use "
                    "(JSON, or CSV with the table's space)")
    rc.add_argument("--space", metavar="NAME|FILE", help="the space, for custom-space tables")
    rc.add_argument("--out", metavar="TABLE.json",
                    help="where to write the recalibrated table (default: TABLE itself, "
                         "atomically; a shipped table needs --out)")
    rc.add_argument("--quick", action="store_true", help="short protocol (smoke tests)")
    add_force_flag(rc)
    add_json_flag(rc)
    rc.set_defaults(func=cmd_recalibrate)
    pr = sub.add_parser("predict", help="predicted end-to-end latency of an architecture")
    pr.add_argument("arch", metavar="ARCH", help="ARCH.json or SPACE:choice,choice,...")
    pr.add_argument("--table", required=True, metavar="TABLE")
    pr.add_argument("--space", metavar="NAME|FILE", help="the space, for custom-space files")
    add_statistic_flag(pr)
    add_json_flag(pr)
    pr.set_defaults(func=cmd_predict)


def _summary(name: str, t) -> dict:
    m = t.meta
    dev = m.get("device")
    return {"table": name, "space": t.space, "space_id": t.space_id,
            "backend": m.get("backend"), "precision": m.get("precision"),
            "figure": t.figure, "batch": m.get("batch", 1), "mode": m.get("mode", "default"),
            "device": dev.get("name") if isinstance(dev, dict) else dev,
            "threads": m.get("threads"), "date": m.get("date") or m.get("imported"),
            "entries": len(t.entries), "failed": sum(not s.ok for s in t.entries.values())}


def cmd_list(args) -> int:
    from ..tables.device import load_device_table, shipped_tables

    rows = [_summary(n, load_device_table(n)) for n in shipped_tables()]
    emit(args, rows, lambda r: table("shipped device tables",
                                     ["table", "space", "backend", "precision", "figure",
                                      "device", "entries"],
                                     [[x["table"], x["space"], x["backend"], x["precision"],
                                       x["figure"], x["device"], x["entries"]] for x in r]))
    return 0


def cmd_show(args) -> int:
    from ..tables.device import load_device_table

    t = load_device_table(args.table)
    d = t.to_dict()

    def human(d) -> None:
        fields(f"device table {args.table}", {**_summary(args.table, t),
                                              "overhead_ms": d["overhead_ms"],
                                              # each group's error: its own table below
                                              "calibration": {k: v for k, v in
                                                              d["calibration"].items()
                                                              if k != "groups"}})
        fld = t.figure_field
        console().print(f"predicts the {t.figure} ({fld}); also: "
                        f"{', '.join(s for s in t.statistics() if s != t.figure) or 'none'}")
        table("calibration lines: held-out (leave-one-out) error on the calibration networks",
              ["statistic", "networks", "within 5%", "within 10%", "median |err| %"],
              [[s, r.get("fitted_on", "-"), _pct(r.get("loo_within_5pct")),
                _pct(r.get("loo_within_10pct")), _num(r.get("loo_median_abs_err_pct"))]
               for s, r in _line_reports(t)])
        groups = t.error_groups()
        if groups:
            table(f"prediction error by group of whole networks ({t.figure} line unless said)",
                  ["group", "basis", "networks", "within 5%", "within 10%", "median |err| %",
                   "max |err| %"],
                  [[g["group"], g["basis"], g.get("nets", "-"), _pct(g.get("within_5pct")),
                    _pct(g.get("within_10pct")), _num(g.get("median_abs_err_pct")),
                    _num(g.get("max_abs_err_pct"))] for g in groups])
        table("entries", ["block", f"{t.figure} ms", "median ms", "p90 ms", "IQR ms", "n",
                          "status"],
              [[k, f"{v[fld]:.4f}" if fld in v else "-",
                f"{v['median_ms']:.4f}" if "median_ms" in v else "-",
                f"{v['p90_ms']:.4f}" if "p90_ms" in v else "-",
                f"{v.get('spread_ms', 0):.4f}", v.get("n", "-"),
                v["status"] + (f": {v['reason']}" if v.get("reason") else "")]
               for k, v in d["entries"].items()])

    emit(args, d, human)
    return 0


def cmd_import(args) -> int:
    from ..tables.foreign import import_foreign

    check_out(args.out, args.force, "--out")
    t = import_foreign(args.file, args.format, args.space)
    t.save(args.out)
    emit(args, _summary(args.out, t),
         lambda d: console().print(f"imported {d['entries']} blocks into {d['table']}"
                                   + (f" (serves space {d['space']})" if d["space"] else "")))
    return 0


def _pct(v) -> str:
    return "-" if not isinstance(v, (int, float)) else f"{100 * v:.0f}%"


def _num(v) -> str:
    return "-" if not isinstance(v, (int, float)) else f"{v:.2f}"


def _line_reports(t) -> list[tuple[str, dict]]:
    """Each statistic the table predicts, with its line's report (fit and held-out error)."""
    return [(s, dict(t.line_record(s) or {})) for s in t.statistics()]


def cmd_predict(args) -> int:
    from ..arch import load_architecture
    from ..tables.device import load_device_table

    from ..tables.device import fp32_sibling

    sp, arch = load_architecture(args.arch, args.space)
    t = load_device_table(args.table)
    warn(t.portability_warning(args.table))
    pred = t.predict(arch, sp, statistic=args.statistic)
    batch = t.meta.get("batch", 1) if isinstance(t.meta.get("batch", 1), int) else 1
    d = {"architecture": arch.notation(), "space": sp.name, "space_id": sp.id,
         "table": str(args.table), **pred.to_dict(), "batch": batch,
         "statistics": {s: t.predict(arch, sp, statistic=s).latency_ms for s in t.statistics()},
         "throughput_ips": batch * 1000.0 / pred.latency_ms if pred.latency_ms > 0 else None,
         "throughput_basis": "derived: batch * 1000 / latency_ms of the prediction, not measured"}
    fp32 = fp32_sibling(t, args.table)
    if fp32 is not None:
        d["fp32_latency_ms"] = fp32.predict(arch, sp, statistic=pred.figure).latency_ms

    def human(d) -> None:
        others = "; ".join(f"{s} {v:.3f} ms" for s, v in d["statistics"].items()
                           if s != d["figure"])
        tp = (f"; batch {d['batch']}: {d['throughput_ips']:.0f} images/s (derived)"
              if d.get("throughput_ips") else "")
        console().print(f"[bold]{d['latency_ms']:.3f} ms[/bold] predicted ({d['figure']}"
                        f"{'; ' + others if others else ''}{tp}) for {d['architecture']} on "
                        f"{t.describe_source()}")
        if d.get("fp32_latency_ms") is not None:
            console().print(precision_line(t.meta.get("precision"), d["latency_ms"],
                                           d["fp32_latency_ms"], d["figure"]))
        table(f"breakdown ({d['figure']}, calibrated ms; rows sum to the figure)", ["row", "ms"],
              [[r["block"], f"{r['ms']:.4f}"] for r in d["breakdown"]])

    emit(args, d, human)
    return 0


def _say_stage():
    """A progress callback that prints each stage once, when it begins."""
    seen: set[str] = set()

    def say(stage: str, done: int, total: int) -> None:
        if stage not in seen:
            seen.add(stage)
            console().print(f"[dim]{stage}[/dim]")

    return say


def _accuracy_for(path: str, table: str, space) -> object:
    """The accuracy table whose frontier a recalibration measures (a CSV takes the device
    table's own space)."""
    from ..spaces import find_space_by_id
    from ..tables import load_accuracy_table
    from ..tables.device import load_device_table

    if space is None and str(path).lower().endswith(".csv"):
        space = find_space_by_id(load_device_table(table, check_machine=False).space_id)
    return load_accuracy_table(path, space)


def cmd_recalibrate(args) -> int:
    from pathlib import Path

    from ..errors import UserError
    from ..recalibration import recalibrate_table
    from ..spaces import load_space

    out = args.out
    if out is not None and Path(out).resolve() != Path(args.table).resolve():
        check_out(out, args.force, "--out")
    if out is None:
        if not Path(args.table).is_file():
            raise UserError(f"{args.table} is a shipped table; write the recalibrated copy "
                            "with --out TABLE.json")
        out = args.table
    sp = load_space(args.space) if args.space else None
    acc = _accuracy_for(args.accuracy, args.table, sp) if args.accuracy else None
    quiet = args.json
    r = recalibrate_table(args.table, out, args.nets, args.seed, args.quick, sp,
                          progress=None if quiet else _say_stage(), frontier=args.frontier,
                          accuracy=acc)

    def human(d) -> None:
        b, f = d["previous_error_on_these_nets"], d["fit"]
        console().print(
            f"recalibrated {args.table} -> {d['table']} on {d['nets']} networks "
            f"({d['figure']}) in {d['seconds']:.1f} s: scale {f['scale']:.4f}, offset "
            f"{f['offset_ms']:.4f} ms ({f['method']}); before: {100 * b['within_10pct']:.0f}% "
            f"within 10%, median error {b['median_abs_err_pct']:.1f}%; after (held out): "
            f"{100 * f.get('loo_within_10pct', f['within_10pct']):.0f}% within 10%, median "
            f"{f.get('loo_median_abs_err_pct', f['median_abs_err_pct']):.1f}%")
        for g, e in (f.get("groups") or {}).items():
            console().print(f"  {g} networks ({e['nets']}): within 5% "
                            f"{100 * e['before']['within_5pct']:.0f}% -> "
                            f"{100 * e['after']['within_5pct']:.0f}%, median error "
                            f"{e['before']['median_abs_err_pct']:.1f}% -> "
                            f"{e['after']['median_abs_err_pct']:.1f}%")

    emit(args, r, human)
    return 0
