"""``hwnas-profilers`` (or ``python -m hwnas_profilers``): the device-side command (numpy +
one runtime; no torch, no hwnas).

    hwnas-profilers profile BUNDLE_DIR --backend B --out FILE [--device D] [--precision P]
                    [--threads N] [--batch N] [--resume] [--quick] [--json]
                    [--ray ADDRESS [--resources device=NAME]]
    hwnas-profilers measure MODEL --backend B [--shape N,C,H,W]
                    [--iterations N | --duration S] [--trust-code] [--json]
    hwnas-profilers backends

Bad input prints one line and exits 2; Ctrl-C exits 130 with the finished rounds kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .base import ProfilerError, Settings
from .bounds import check_counts, check_input, check_threads
from .protocol import Protocol


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def add_settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", required=True, help="registered backend (see: backends)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N (the GPU's "
                   "number), tensorrt, gpu, GPU.N (OpenVINO), npu ...")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1; 0: one per core)")
    p.add_argument("--batch", type=int, default=1, help="batch size (the bundle's; default 1)")
    p.add_argument("--mode", default="", help="backend execution mode (torch: eager, cuda-graph, aoti)")
    p.add_argument("--quick", action="store_true", help="short protocol (smoke runs; noisier)")


def add_count_args(p: argparse.ArgumentParser) -> None:
    """benchmark_app's -niter / -t, trtexec's --iterations / --duration."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--iterations", type=int, default=0, metavar="N",
                   help="exactly N timed calls per session, no stop rule (default: the "
                        "profiling protocol decides)")
    g.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="sample each session for S seconds of wall time, no stop rule")


def count_protocol(iterations: int, duration: float, quick: bool) -> Protocol | None:
    """The fixed-count protocol the flags ask for, or None; bad values raise ProfilerError."""
    if not iterations and not duration:
        return None
    if quick:
        raise ProfilerError("--quick is the protocol's short form; with --iterations or "
                            "--duration it has no meaning")
    check_counts(iterations, duration)
    return Protocol.fixed(iterations=iterations, duration_s=duration)


def add_trust_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-code", action="store_true",
                   help="load an AOTInductor package hwnas did not build here (loading runs "
                        "the native code inside it; without this flag only packages whose "
                        "sha256 hwnas recorded when compiling them are loaded)")


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ProfilerError(f"--shape takes integers separated by commas, got {text!r}") from None
    if len(shape) != 4 or min(shape) < 1:
        raise ProfilerError(f"--shape must be N,C,H,W with positive sizes, got {text}")
    check_input(shape, "--shape")
    return shape


def with_batch(shape: tuple[int, ...] | None, batch: int | None) -> tuple[int, ...] | None:
    """``shape`` with its N replaced by ``batch`` (``None``: unchanged), as ``--batch``
    does on a model with a dynamic batch dimension; without a shape there is no N to
    replace (a model's own batch is in its file)."""
    if batch is None:
        return shape
    if batch < 1:
        raise ProfilerError(f"--batch must be at least 1, got {batch}")
    if shape is None:
        raise ProfilerError("--batch replaces N of the input shape: give --shape N,C,H,W "
                            "(neither the command nor a manifest.json beside the model "
                            "says it)")
    check_input((batch, *shape[1:]), "--batch with the input")
    return (batch, *shape[1:])


def settings_from(args: argparse.Namespace) -> tuple[Settings, Protocol]:
    fixed = count_protocol(getattr(args, "iterations", 0), getattr(args, "duration", 0.0),
                           args.quick)
    if getattr(args, "ray", None) is None:  # a fleet's nodes have their own core counts
        check_threads(args.threads)
    return (Settings(device=args.device, precision=args.precision, threads=args.threads,
                     batch=args.batch, mode=args.mode),
            fixed or (Protocol.quick() if args.quick else Protocol()))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwnas-profilers", description="measure block bundles on this device")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    p = sub.add_parser("profile", help="measure a block bundle into a device table")
    p.add_argument("bundle", metavar="BUNDLE_DIR")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--resume", action="store_true", help="continue an interrupted table")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="measure on every device node of a Ray cluster (HOST:PORT or auto); "
                        "--out is then a folder with one table per device")
    p.add_argument("--resources", default="", metavar="device=NAME",
                   help="with --ray: the custom resource that marks a device node "
                        "(default device=hwnas-device)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_settings_args(p)
    m = sub.add_parser("measure", help="one model or engine file end to end")
    m.add_argument("model", metavar="MODEL", help=".onnx, .xml (OpenVINO IR), .plan, .pt2")
    m.add_argument("--shape", default=None, metavar="N,C,H,W",
                   help="input shape, for a model with dynamic dimensions (default: the "
                        "model's own; N is the batch)")
    add_count_args(m)
    add_trust_flag(m)
    m.add_argument("--json", action="store_true")
    add_settings_args(m)
    sub.add_parser("backends", help="registered backends")
    return parser


def describe(r: dict) -> str:
    """One measured model in a line: the table's figure, then the percentiles people quote."""
    return (f"{r['figure']} {r['figure_ms']:.4f} ms, median {r['median_ms']:.4f}, p90 "
            f"{r['p90_ms']:.4f}, p99 {r.get('p99_ms', 0.0):.4f} ms (IQR {r['spread_ms']:.4f}, "
            f"n {r['n']}), {r.get('throughput_ips') or 0:.1f} inferences/s at batch "
            f"{r.get('batch', 1)}, per-call overhead {r['overhead_ms']:.4f} ms")


def _progress(stage: str, done: int, total: int) -> None:
    sys.stderr.write(f"\r[{done}/{total}] {stage:<40}")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 terminal: escapes, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    from .fileformat import FormatError, LockTimeout, one_line
    from .registry import available_backends
    from .bundle_run import measure_model, profile_bundle

    try:
        from .cachedir import check_configured

        check_configured()  # HWNAS_CACHE on a file or under /dev/null: before any work
        if args.cmd == "backends":
            sys.stdout.write("\n".join(available_backends()) + "\n")
            return 0
        settings, protocol = settings_from(args)
        if args.cmd == "profile" and args.ray is not None:
            from .fleet import DEFAULT_RESOURCE, profile_fleet

            res = args.resources.split("=", 1)[-1] if args.resources else DEFAULT_RESOURCE
            r = profile_fleet(args.bundle, args.backend, args.out, settings, protocol,
                              address=args.ray, resource=res, resume=args.resume,
                              progress=_progress if sys.stderr.isatty() else None)
            if args.json:
                sys.stdout.write(json.dumps(r, indent=1) + "\n")
                return 0
            for name, dev in r["devices"].items():
                sys.stdout.write(f"{name}: {dev['table']} ({dev['status']}, "
                                 f"{dev['attempts']} attempt(s), {dev['wall_s']:.0f} s)\n")
            return 0
        if args.cmd == "profile":
            if args.resources:
                raise ProfilerError("--resources needs --ray ADDRESS")
            t = profile_bundle(args.bundle, args.backend, args.out, settings, protocol,
                               resume=args.resume,
                               progress=_progress if sys.stderr.isatty() else None)
            failed = sum(1 for e in t["entries"].values() if e.get("status") != "ok")
            cal = t.get("calibration", {})
            if args.json:
                sys.stdout.write(json.dumps({
                    "out": args.out, "status": t["meta"].get("status"),
                    "blocks": len(t["entries"]),
                    "failed": sorted(k for k, e in t["entries"].items()
                                     if e.get("status") != "ok"),
                    "overhead_ms": t.get("overhead_ms"),
                    "calibration": {k: v for k, v in cal.items() if k != "networks"}},
                    indent=1) + "\n")
                return 0
            sys.stdout.write(f"{args.out}: {len(t['entries'])} blocks ({failed} failed), "
                             f"status {t['meta'].get('status')}, overhead {t['overhead_ms']:.4f} ms, "
                             f"calibration scale {cal.get('scale', 1.0):.3f} offset "
                             f"{cal.get('offset_ms', 0.0):.3f} ms on {cal.get('fitted_on', 0)} nets\n")
            return 0
        # --batch 1 is the default here: it leaves the model's own N
        shape = with_batch(parse_shape(args.shape), args.batch if args.batch != 1 else None)
        from .trust import code_trusted

        with code_trusted(args.trust_code):
            r = measure_model(args.model, args.backend, settings, protocol, input_shape=shape)
        if args.json:
            sys.stdout.write(json.dumps(r, indent=1) + "\n")
        else:
            sys.stdout.write(f"{args.model}: {describe(r)}\n")
        return 0
    except (ProfilerError, FormatError, LockTimeout) as exc:
        sys.stderr.write(f"hwnas-profilers: error: {one_line(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\nhwnas-profilers: interrupted; finished measurements are kept, rerun with --resume\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
