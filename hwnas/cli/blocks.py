"""``hwnas blocks export``: the block bundle a device-side profiling run reads."""

from __future__ import annotations

from ._output import add_force_flag, add_json_flag, check_out, console, emit, progress_bar


def register(sub) -> None:
    p = sub.add_parser("blocks", help="block bundles for device-side profiling")
    s = p.add_subparsers(dest="blocks_cmd", metavar="ACTION", required=True)
    ex = s.add_parser("export", help="one ONNX file per unique block of a space + manifest")
    ex.add_argument("--space", required=True, metavar="NAME|FILE")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.add_argument("--calibration-nets", type=int, default=8, metavar="N",
                    help="whole random networks to include for calibration (default 8)")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--backend", default=None, metavar="B",
                    help="profiler backend the bundle is for (default: ONNX files, which the "
                         "ONNX backends convert on the device); litert: .tflite files, "
                         "executorch: .pte files, converted here")
    ex.add_argument("--precision", action="append", choices=("fp32", "int8"), default=None,
                    help="with a converted format: the precisions to write (repeatable; "
                         "default fp32 and int8)")
    add_force_flag(ex)
    add_json_flag(ex)
    ex.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..bundle import export_bundle
    from ..errors import UserError, require
    from ..spaces import load_space

    check_out(args.out, args.force, "--out", folder=True, made_by="hwnas.block_bundle")
    sp = load_space(args.space)
    if args.calibration_nets < 0:
        raise UserError("--calibration-nets must be >= 0")
    require("torch", "torch")
    require("onnx", "torch")
    fmt, precisions = _format(args)
    prog, task = progress_bar(f"exporting {sp.name}", len(sp.unique_blocks()) + args.calibration_nets)
    with prog:
        manifest = export_bundle(sp, args.out, args.calibration_nets, args.seed,
                                 progress=lambda stage, i, n: prog.update(task, completed=i),
                                 fmt=fmt, precisions=precisions)
    summary = {"out": args.out, "space": sp.name, "space_id": sp.id,
               "blocks": len(manifest["blocks"]), "networks": len(manifest["networks"])}
    emit(args, summary, lambda d: console().print(
        f"wrote {d['blocks']} block files and {d['networks']} networks to {d['out']}"))
    return 0


def _format(args) -> tuple[str, tuple[str, ...]]:
    """(bundle format, precisions) for ``--backend`` and ``--precision``; a converted
    format's converter is checked here, before anything is written."""
    from ..bundle import format_writer
    from ..errors import UserError
    from ..profiling import profiler_errors

    fmt = "onnx"
    if args.backend:
        from hwnas_profilers.registry import backend_class

        with profiler_errors():  # an unknown backend: one line listing the registered ones
            fmt = backend_class(args.backend).bundle_format
    if fmt == "onnx":
        if args.precision:
            raise UserError("an ONNX bundle holds fp32 files (the device makes its fp16 and "
                            "int8 copies); --precision is for converted formats (--backend litert, executorch)")
        return fmt, ("fp32",)
    format_writer(fmt)  # litert-torch missing: one line naming the extra
    return fmt, tuple(dict.fromkeys(args.precision or ("fp32", "int8")))
