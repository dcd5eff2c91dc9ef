"""``hwnas export``: one engine file (and its manifest) for an architecture of a supernet."""

from __future__ import annotations

from pathlib import Path

from ._output import add_json_flag, console, emit, warn
from ._request_flags import add_old_quantization_alias, add_quantization_flags


def register(sub) -> None:
    p = sub.add_parser("export", help="fine-tune a chosen network (QAT for int8) and emit a "
                       "verified, measured engine file for a runtime")
    p.add_argument("arch", metavar="ARCH", help="architecture file or SPACE:c1,c2,...")
    p.add_argument("--supernet", required=True, metavar="CKPT", help="supernet.pt of hwnas train/run")
    p.add_argument("--backend", required=True, metavar="B",
                   help="engine: onnxruntime, openvino, tensorrt, torch-aoti, executorch, litert "
                        "(or a registered one)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, gpu ...")
    p.add_argument("--threads", type=int, default=1, help="threads the engine is measured with")
    p.add_argument("--data", default=None, metavar="digits|FOLDER|FILE.npz",
                   help="data for fine-tuning, calibration, parity and accuracy")
    p.add_argument("--finetune-epochs", type=float, default=0.0, metavar="N",
                   help="fine-tune the inherited network for N epochs of --data (fp32)")
    add_quantization_flags(p, default="ptq")
    add_old_quantization_alias(p, "--qat")
    p.add_argument("--qat-epochs", type=float, default=2.0, metavar="N")
    p.add_argument("--qat-export", default="nncf", choices=("nncf", "requantize"),
                   help="int8 file after QAT: NNCF's trained quantizers as Q/DQ (default), or "
                   "the QAT-adapted weights re-quantized by --ptq-with")
    p.add_argument("--table", default=None, metavar="T",
                   help="device table for the predicted latency (default: the matching shipped one)")
    p.add_argument("--no-measure", action="store_true", help="skip the latency measurement")
    p.add_argument("--quick", action="store_true", help="short measurement protocol (noisier)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    add_json_flag(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ._torch import passive_openmp

    passive_openmp()
    from ..engines import EngineRequest, export_engine, wants_qat
    from ..errors import UserError

    if args.finetune_epochs < 0 or args.qat_epochs < 0:
        raise UserError("--finetune-epochs and --qat-epochs must be >= 0")
    if args.quantization == "qat" and args.precision != "int8":
        raise UserError("--quantization qat makes an int8 engine; add --precision int8")
    qat = wants_qat(args.quantization, args.backend, args.precision)
    req = EngineRequest(backend=args.backend, precision=args.precision, device=args.device,
                        threads=args.threads, finetune_epochs=args.finetune_epochs,
                        qat=qat, qat_epochs=args.qat_epochs, qat_export=args.qat_export,
                        ptq=args.ptq_with, seed=args.seed, quick=args.quick,
                        measure=not args.no_measure)
    if (args.finetune_epochs or qat) and not args.data:
        raise UserError("fine-tuning and quantization-aware fine-tuning need --data")
    if Path(args.out).exists() and not args.force:  # the library says "force", not the flag
        raise UserError(f"{args.out} exists; pass --force to replace it (the old engine is "
                        "kept until the new one is complete), or choose another --out")
    c = console()
    say = (lambda s: None) if args.json else (lambda s: c.print(f"[bold cyan]hwnas export[/]: {s}"))
    m = export_engine(args.arch, args.supernet, req, args.out, args.data, args.table,
                      args.force, say)
    from ..engines.registry import emitter_class

    warn(emitter_class(args.backend).untested or None)  # built, but never run on hardware
    emit(args, m, _human)
    return check_status(m["parity"])


def check_status(parity: dict) -> int:
    """0 when the engine met its parity criterion, else ``CHECK_FAILED`` with one line on
    stderr: the engine and its manifest are written, but a deployment must not take it."""
    import sys

    from ..errors import CHECK_FAILED

    if parity.get("ok"):
        return 0
    sys.stderr.write(f"hwnas: check failed: parity against PyTorch not met "
                     f"({parity.get('criterion', '')}); the engine is written but did not "
                     f"pass (exit {CHECK_FAILED})\n")
    return CHECK_FAILED


def _human(m) -> None:
    c = console()
    e, lat, par, acc = m["engine"], m["latency"], m["parity"], m.get("accuracy") or {}
    c.print(f"wrote {e['path']} ({e['backend']} {e['precision']} on {e['device']})")
    if lat.get("measured_ms") is not None:
        pred = lat.get("predicted_ms")
        c.print(f"  measured {lat['measured_ms']:.4f} ms (IQR {lat['measured_spread_ms']:.4f}, "
                f"n {lat['measured_n']})" + (
                    f"; predicted {pred:.4f} ms ({100 * lat['prediction_error']:+.1f}%)"
                    if pred else f"; no prediction: {lat.get('note', '')}"))
        if lat.get("host_drift") is not None and abs(lat["host_drift"]) > 0.05:
            c.print(f"  host drift: the reference graph ran {100 * lat['host_drift']:+.0f}% "
                    "against the table's profiling run (the host's phase, part of the error)")
        for mm in lat.get("mismatch") or []:
            c.print(f"  [yellow]table mismatch[/]: {mm}")
    if (e.get("default_load") or {}).get("note"):
        c.print(f"  [yellow]load with the manifest's settings[/]: {e['default_load']['note']} "
                f"(max |diff| {e['default_load']['max_abs_diff_vs_measured_load']:.2e})")
    c.print(f"  parity vs PyTorch fp32: max |diff| {par['max_abs_diff']:.2e}, top-1 agreement "
            f"{100 * par['top1_agreement']:.1f}% on {par['images']} images "
            f"({'ok' if par['ok'] else 'NOT MET: ' + par['criterion']})")
    if "val_engine" in acc:
        c.print(f"  validation accuracy of the engine {100 * acc['val_engine']:.1f}% "
                f"(fp32 PyTorch {100 * acc.get('val_fp32_torch', float('nan')):.1f}%)")
