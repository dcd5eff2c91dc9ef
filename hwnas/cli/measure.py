"""``hwnas measure``: one ONNX network end to end, with the profiling protocol."""

from __future__ import annotations

from ._output import add_json_flag, console, emit
from .profile import add_runtime_args


def register(sub) -> None:
    p = sub.add_parser("measure", help="measure one ONNX model end to end on a runtime")
    p.add_argument("model", metavar="MODEL.onnx")
    add_runtime_args(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_measure)


def cmd_measure(args) -> int:
    from ..profiling import measure_onnx

    r = measure_onnx(args.model, args.backend, args.device, args.precision, args.threads,
                     args.quick)
    emit(args, r, lambda d: console().print(
        f"{d['model']}: {d['median_ms']:.4f} ms median (IQR {d['spread_ms']:.4f} ms, n {d['n']}"
        f"{'' if d.get('stable') else ', not stable at the cap'}) on {d['meta']['backend']} "
        f"{d['meta']['precision']}, {d['meta']['threads']} thread(s); per-call overhead "
        f"{d['overhead_ms']:.4f} ms"))
    return 0
