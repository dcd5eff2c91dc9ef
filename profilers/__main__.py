"""``python -m profilers``: the device-side command (numpy + one runtime; no torch, no hwnas).

    python -m profilers profile BUNDLE_DIR --backend B --out FILE [--device D]
                                [--precision P] [--threads N] [--resume] [--quick]
                                [--ray ADDRESS [--resources device=NAME]]
    python -m profilers measure MODEL.onnx --backend B [--json]
    python -m profilers backends

Bad input prints one line and exits 2; Ctrl-C exits 130 with the finished rounds kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .base import ProfilerError, Settings
from .protocol import Protocol


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def add_settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", required=True, help="registered backend (see: backends)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, tensorrt, gpu, npu ...")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1; 0: one per core)")
    p.add_argument("--batch", type=int, default=1, help="batch size (the bundle's; default 1)")
    p.add_argument("--mode", default="", help="backend execution mode (torch: eager, cuda-graph)")
    p.add_argument("--quick", action="store_true", help="short protocol (smoke runs; noisier)")


def settings_from(args: argparse.Namespace) -> tuple[Settings, Protocol]:
    return (Settings(device=args.device, precision=args.precision, threads=args.threads,
                     batch=args.batch, mode=args.mode),
            Protocol.quick() if args.quick else Protocol())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m profilers", description="measure block bundles on this device")
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
    add_settings_args(p)
    m = sub.add_parser("measure", help="one ONNX model end to end")
    m.add_argument("model", metavar="MODEL.onnx")
    m.add_argument("--json", action="store_true")
    add_settings_args(m)
    sub.add_parser("backends", help="registered backends")
    return parser


def _progress(done: int, total: int, label: str) -> None:
    sys.stderr.write(f"\r[{done}/{total}] {label:<40}")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .registry import available_backends
    from .session import measure_model, profile_bundle

    try:
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
            sys.stdout.write(f"{args.out}: {len(t['entries'])} blocks ({failed} failed), "
                             f"status {t['meta'].get('status')}, overhead {t['overhead_ms']:.4f} ms, "
                             f"calibration scale {cal.get('scale', 1.0):.3f} offset "
                             f"{cal.get('offset_ms', 0.0):.3f} ms on {cal.get('fitted_on', 0)} nets\n")
            return 0
        r = measure_model(args.model, args.backend, settings, protocol)
        if args.json:
            sys.stdout.write(json.dumps(r, indent=1) + "\n")
        else:
            sys.stdout.write(f"{args.model}: {r['figure']} {r['figure_ms']:.4f} ms, median "
                             f"{r['median_ms']:.4f} ms (IQR "
                             f"{r['spread_ms']:.4f}, n {r['n']}), per-call overhead "
                             f"{r['overhead_ms']:.4f} ms\n")
        return 0
    except ProfilerError as exc:
        sys.stderr.write(f"profilers: error: {' '.join(str(exc).split())}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\nprofilers: interrupted; finished measurements are kept, rerun with --resume\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
