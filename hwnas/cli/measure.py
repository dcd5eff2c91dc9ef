"""``hwnas measure``: one model or engine file end to end, with the profiling protocol.

Engine files are what ``hwnas export``/``run`` wrote: ``.onnx`` (ONNX Runtime), ``.xml``
(OpenVINO IR), ``.plan`` (TensorRT), ``.pt2`` (AOTInductor). Beside an engine, its
``manifest.json`` supplies the backend, device, precision and input shape unless given.
"""

from __future__ import annotations

from pathlib import Path

from ._output import add_json_flag, console, emit

_BY_SUFFIX = {".xml": "openvino", ".plan": "tensorrt", ".engine": "tensorrt", ".pt2": "torch"}


def register(sub) -> None:
    p = sub.add_parser("measure", help="measure one model or engine file end to end on a runtime")
    p.add_argument("model", metavar="MODEL", help=".onnx, .xml (OpenVINO IR), .plan, .pt2")
    p.add_argument("--backend", default=None, help="profiler backend (default: from the "
                   "engine's manifest or its suffix)")
    p.add_argument("--device", default=None, help="cpu (default), cuda, ...")
    p.add_argument("--precision", default=None, choices=("fp32", "fp16", "int8"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", default=None, metavar="N,C,H,W",
                   help="input shape (needed for .pt2 without a manifest)")
    p.add_argument("--quick", action="store_true", help="short protocol for smoke runs (noisier)")
    add_json_flag(p)
    p.set_defaults(func=cmd_measure)


def cmd_measure(args) -> int:
    from ..errors import UserError
    from ..profiling import measure_onnx

    path = Path(args.model)
    man = _manifest(path)
    eng = man.get("engine", {}) if man else {}
    backend = args.backend or (_profiler_of(eng["backend"]) if eng.get("backend") else None) \
        or _BY_SUFFIX.get(path.suffix.lower())
    if backend is None:
        raise UserError(f"give --backend for {path.name} (no manifest.json beside it)")
    shape = None
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
        except ValueError:
            raise UserError(f"--shape takes integers separated by commas, got {args.shape!r}") from None
        if len(shape) != 4 or min(shape) < 1:
            raise UserError(f"--shape must be N,C,H,W with positive sizes, got {args.shape}")
    elif eng.get("input_shape"):
        shape = tuple(int(v) for v in eng["input_shape"])
    r = measure_onnx(path, backend, args.device or eng.get("device", "cpu"),
                     args.precision or eng.get("precision", "fp32"), args.threads, args.quick,
                     input_shape=shape)
    emit(args, r, lambda d: console().print(
        f"{d['model']}: {d['figure_ms']:.4f} ms {d['figure']} (median {d['median_ms']:.4f}, "
        f"p90 {d['p90_ms']:.4f}, IQR {d['spread_ms']:.4f} ms, n {d['n']}"
        f"{'' if d.get('stable') else ', not stable at the cap'}) on {d['meta']['backend']} "
        f"{d['meta']['precision']}, {d['meta']['threads']} thread(s); per-call overhead "
        f"{d['overhead_ms']:.4f} ms"))
    return 0


def _profiler_of(emitter: str) -> str:
    from ..engines import emitter_class

    return emitter_class(emitter).profiler


def _manifest(path: Path) -> dict | None:
    from ..engines import read_manifest
    from ..errors import UserError

    m = path.parent / "manifest.json"
    if not m.is_file():
        return None
    try:
        d = read_manifest(m)
    except UserError:
        return None
    return d if d.get("engine", {}).get("file") == path.name else None
