"""``hwnas measure``: one model or engine file end to end, with the profiling protocol.

Engine files are what ``hwnas export``/``run`` wrote: ``.onnx`` (ONNX Runtime), ``.xml``
(OpenVINO IR), ``.plan`` (TensorRT), ``.pt2`` (AOTInductor). Beside an engine, its
``manifest.json`` supplies the backend, device, precision and input shape unless given.
"""

from __future__ import annotations

from pathlib import Path

from hwnas_profilers.cli import (add_count_args, add_trust_flag, describe, parse_shape,
                                 with_batch)

from ._output import add_json_flag, console, emit

_BY_SUFFIX = {".xml": "openvino", ".plan": "tensorrt", ".engine": "tensorrt", ".pt2": "torch"}


def register(sub) -> None:
    p = sub.add_parser("measure", help="measure one model or engine file end to end on a runtime")
    p.add_argument("model", metavar="MODEL", help=".onnx, .xml (OpenVINO IR), .plan, .pt2")
    p.add_argument("--backend", default=None, help="profiler backend (default: from the "
                   "engine's manifest or its suffix)")
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N (the GPU's "
                   "number), GPU.N (OpenVINO) ...")
    p.add_argument("--precision", default=None, choices=("fp32", "fp16", "int8"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", default=None, metavar="N,C,H,W",
                   help="input shape (needed for .pt2 without a manifest)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="batch size, for an engine with a dynamic batch dimension (replaces "
                        "N of the input shape)")
    p.add_argument("--quick", action="store_true", help="short protocol for smoke runs (noisier)")
    add_count_args(p)
    add_trust_flag(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_measure)


def cmd_measure(args) -> int:
    from hwnas_profilers.bounds import check_threads

    from ..errors import UserError
    from ..profiling import measure_onnx, profiler_errors

    path = Path(args.model)
    man = _manifest(path)
    eng = man["engine"] if man else {}
    backend = args.backend or (_profiler_of(eng["backend"]) if eng.get("backend") else None) \
        or _BY_SUFFIX.get(path.suffix.lower())
    if backend is None:
        raise UserError(f"give --backend for {path.name} (no manifest.json beside it)")
    with profiler_errors():
        check_threads(args.threads)
        shape = parse_shape(args.shape)
        if shape is None and man:
            from ..runfiles import engine_shape

            shape = engine_shape(man, f"engine manifest {path.parent / 'manifest.json'}")
        shape = with_batch(shape, args.batch)
    fixed = bool(args.iterations or args.duration)
    r = measure_onnx(path, backend, args.device or str(eng.get("device", "cpu")),
                     args.precision or str(eng.get("precision", "fp32")), args.threads,
                     args.quick, input_shape=shape, iterations=args.iterations,
                     duration_s=args.duration, trust_code=args.trust_code)
    emit(args, r, lambda d: console().print(
        f"{d['model']}: {describe(d)}"
        f"{'' if d.get('stable') or fixed else ', not stable at the cap'}; on "
        f"{d['meta']['backend']} {d['meta']['precision']}, {d['meta']['threads']} thread(s)",
        markup=False, highlight=False))
    return 0


def _profiler_of(emitter: str) -> str:
    from ..engines import emitter_class

    return emitter_class(emitter).profiler


def _manifest(path: Path) -> dict | None:
    """The engine manifest beside ``path`` when it describes this file: read as input
    (bounded, its schema checked) and the engine's sha256 verified before it is measured.
    Another file's manifest, or a manifest of another kind, is not this file's."""
    from hwnas_profilers.fileformat import FormatError, read_json

    from ..engines.build import MANIFEST_KIND
    from ..runfiles import engine_file, read_run_file

    m = path.parent / "manifest.json"
    if not m.is_file():
        return None
    try:
        raw = read_json(m, "engine manifest")
    except FormatError:
        return None  # not a manifest hwnas can read: the model is measured on its own terms
    if not isinstance(raw, dict) or raw.get("kind") != MANIFEST_KIND:
        return None
    d = read_run_file(m, MANIFEST_KIND, "engine manifest")  # an engine's: read as input
    if d["engine"].get("file") != path.name:
        return None  # another file's engine
    engine_file(m, d)  # the file is the one hwnas wrote, byte for byte
    return d
