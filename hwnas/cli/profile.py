"""``hwnas profile``: measure every block of a space on one runtime into a device table."""

from __future__ import annotations

from ._output import check_out, add_json_flag, console, emit, progress_bar


def add_runtime_args(p) -> None:
    p.add_argument("--backend", required=True, help="profiler backend: onnxruntime, openvino, "
                   "torch, tensorrt, executorch, litert, or a third-party one")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N (the GPU's "
                   "number), tensorrt, gpu, GPU.N (OpenVINO), npu ...")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads (default 1: steadier on shared machines; 0: one per core)")
    p.add_argument("--quick", action="store_true", help="short protocol for smoke runs (noisier)")


def register(sub) -> None:
    from ..recalibration import DEFAULT_FRONTIER_NETS

    p = sub.add_parser("profile", help="measure every block of a space into a device table")
    p.add_argument("--space", required=True, metavar="NAME|FILE")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted table; finished blocks are not re-measured")
    p.add_argument("--calibration-nets", type=int, default=12, metavar="N",
                   help="whole networks measured end to end to calibrate (default 12)")
    p.add_argument("--frontier-nets", type=int, default=None, metavar="N",
                   help="then N networks spread along the new table's frontier (block MACs "
                        "as the stand-in accuracy score) are measured with as many random "
                        "ones and the lines fitted on both, each group's error recorded "
                        f"(default {DEFAULT_FRONTIER_NETS} where the backend reads ONNX; 0: "
                        "the random calibration networks only)")
    p.add_argument("--batch", type=int, default=1, metavar="B",
                   help="batch size of every block and network (default 1; GPU deployments "
                        "batch: profile 1, 8 and 32 into separate tables)")
    p.add_argument("--mode", default="", metavar="MODE",
                   help="backend execution mode: torch eager (default), cuda-graph (each "
                        "block captured once, its replay timed: what a graph-captured "
                        "deployment runs) or aoti (each block compiled as a torch-aoti "
                        "engine, its AOTInductor package timed: what a torch-aoti engine "
                        "runs; 10-60 s of compiling per block, cached)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="profile on a Ray cluster (HOST:PORT of its head, or auto): every node "
                        "carrying the device resource measures the space into its own table, "
                        "--out is then a folder (one DEVICE.json per device)")
    p.add_argument("--resources", default="", metavar="device=NAME",
                   help="with --ray: the custom resource that marks a device node (default "
                        "device=hwnas-device; start each node with ray start --resources "
                        "'{\"NAME\": 1}' --labels hwnas-device=BOARD)")
    add_runtime_args(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_profile)


def device_resource(spec: str) -> str:
    """``device=NAME`` (or just ``NAME``) -> the resource name NAME."""
    import re

    from ..errors import UserError

    name = spec.split("=", 1)[1] if spec.startswith("device=") else spec
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", name or ""):
        raise UserError(f"--resources {spec!r}: expected device=NAME, a Ray custom resource "
                        "name (letters, digits, _ . : -)")
    return name


def cmd_profile(args) -> int:
    from ..errors import UserError
    from ..profiling import profile_space
    from ..spaces import load_space

    sp = load_space(args.space)
    if args.calibration_nets < 0:
        raise UserError("--calibration-nets must be >= 0")
    if args.resources and args.ray is None:
        raise UserError("--resources selects the device nodes of a --ray cluster; pass --ray ADDRESS")
    if args.ray is not None:
        return _profile_fleet(args, sp, device_resource(args.resources) if args.resources else "")
    # an existing table is resumed with --resume (and refused without, by profile_space);
    # anything else wrong with --out is refused here, before anything is measured
    check_out(args.out, True, "--out")
    prog, task = progress_bar(f"exporting {sp.name}", len(sp.unique_blocks()) + args.calibration_nets)
    with prog:
        def on_progress(stage: str, i: int, n: int) -> None:
            what = {"exporting": f"exporting {sp.name}",
                    "profiling": f"profiling {sp.name} on {args.backend}"}.get(stage, stage)
            prog.update(task, description=what, completed=i, total=n)

        table = profile_space(sp, args.backend, args.out, args.device, args.precision,
                              args.threads, args.resume, args.calibration_nets, args.quick,
                              progress=on_progress,
                              batch=args.batch, mode=args.mode,
                              frontier_nets=args.frontier_nets)
    cal = table.get("calibration", {})
    entries = table["entries"]
    summary = {"out": str(args.out), "space": sp.name, "space_id": sp.id,
               "backend": args.backend, "status": table["meta"].get("status"),
               "batch": args.batch, "mode": table["meta"].get("mode", "default"),
               "blocks": len(entries),
               "failed": sorted(k for k, e in entries.items() if e.get("status") != "ok"),
               "overhead_ms": table.get("overhead_ms"),
               "calibration": {k: v for k, v in cal.items() if k != "networks"},
               "frontier_phase": _frontier_phase(table)}
    emit(args, summary, _human)
    return 0


def _profile_fleet(args, sp, resource: str) -> int:
    from ..profiling import profile_space

    # --out is a folder of tables: an existing one is continued with --resume (each table's
    # identity is checked), refused without it by profile_fleet
    check_out(args.out, True, "--out", folder=True)
    prog, task = progress_bar(f"exporting {sp.name}", len(sp.unique_blocks()) + args.calibration_nets)
    with prog:
        def on_progress(stage: str, i: int, n: int) -> None:
            prog.update(task, description=f"exporting {sp.name}" if stage == "exporting" else
                        f"fleet {args.backend}: {stage}", completed=i, total=n)

        rep = profile_space(sp, args.backend, args.out, args.device, args.precision,
                            args.threads, args.resume, args.calibration_nets, args.quick,
                            progress=on_progress, batch=args.batch,
                            mode=args.mode, ray=args.ray, resource=resource,
                            frontier_nets=args.frontier_nets)
    summary = {"out": str(args.out), "space": sp.name, "space_id": sp.id,
               "backend": args.backend, "ray": args.ray, **rep}
    emit(args, summary, _human_fleet)
    return 0


def _frontier_phase(table) -> dict | None:
    """The last recalibration of the table when this profile's frontier phase made it."""
    from ..recalibration import summary_of

    recs = table["meta"].get("recalibrations") or []
    last = recs[-1] if recs else None
    if not isinstance(last, dict) or last.get("by") != "hwnas profile":
        return None
    return summary_of(last)


def _human_fleet(d) -> None:
    c = console()
    c.print(f"fleet run on {d['ray']}: {len(d['tables'])} device tables of {d['space']} "
            f"({d['backend']}) in {d['out']}")
    for name, dev in d["devices"].items():
        retried = f", {dev['attempts'] - 1} worker(s) lost and replaced" if dev["attempts"] > 1 else ""
        c.print(f"  {name}: {dev['table']} ({dev['status']}; {dev['wall_s']:.0f} s{retried})")


def _human(d) -> None:
    c = console()
    cal = d["calibration"]
    c.print(f"wrote {d['out']}: {d['blocks']} blocks of {d['space']} on {d['backend']} "
            f"({len(d['failed'])} failed), status {d['status']}")
    for k in d["failed"]:
        c.print(f"  failed: {k}")
    if cal.get("fitted_on"):
        c.print(f"calibration ({cal.get('method')}, {cal['fitted_on']} networks): scale "
                f"{cal['scale']:.3f}, offset {cal['offset_ms']:.3f} ms; held-out median error "
                f"{cal.get('loo_median_abs_err_pct', float('nan')):.1f}%, within 10%: "
                f"{100 * cal.get('loo_within_10pct', 0):.0f}%")
    fp = d.get("frontier_phase")
    if fp:
        c.print(f"fitted on {fp['random_nets']} random and {fp['frontier_nets']} frontier "
                f"networks measured together ({fp['seconds']:.0f} s); held-out error by group:")
        for g, e in fp["groups"].items():
            if e:
                c.print(f"  {g} ({e['nets']}): within 5% {100 * e['within_5pct']:.0f}%, median "
                        f"{e['median_abs_err_pct']:.1f}%, max {e['max_abs_err_pct']:.1f}%")
