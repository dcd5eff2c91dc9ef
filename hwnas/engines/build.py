"""One engine, end to end: network, precision files, engine, parity, measurement, manifest.

Everything is written into a fresh staging folder beside ``out`` and moved into place at
the end (one ``os.replace``), so a failure at any step (a runtime's build error, a full
disk, Ctrl-C) leaves no half-written engine and never touches an existing ``out``; with
``force`` the old folder is swapped out only after the new one is complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from hwnas_profilers.base import device_kind

from ..errors import UserError
from ..fileio import write_json_atomic
from .base import Emitter, EngineError, ModelFiles
from .manifest import MANIFEST_KIND, MANIFEST_SCHEMA, EngineManifest
from .registry import get_emitter
Say = Callable[[str], None]


QUANTIZATION = ("auto", "qat", "ptq")
PTQ_LIBRARIES = ("onnxruntime", "nncf")


@dataclass(frozen=True)
class EngineRequest:
    """What to build; every field is checked before any work starts."""

    backend: str = "onnxruntime"
    precision: str = "fp32"
    device: str = "cpu"
    threads: int = 1
    finetune_steps: int = 0        # fine-tuning of the inherited network (fp32), in steps ...
    finetune_epochs: float = 0.0   # ... or in epochs of the training split (batch 64)
    qat: bool = False              # int8 by quantization-aware fine-tuning (else PTQ)
    qat_steps: int = 0
    qat_epochs: float = 2.0
    qat_export: str = "nncf"       # Q/DQ of NNCF's own quantizers, or "requantize" the weights
    ptq: str = "onnxruntime"       # post-training quantizer: onnxruntime | nncf
    calibration_images: int = 128
    parity_images: int = 256       # validation images compared (all, when fewer)
    seed: int = 0
    quick: bool = False            # short measurement protocol
    measure: bool = True

    def __post_init__(self) -> None:
        if min(self.finetune_steps, self.qat_steps, self.threads, self.finetune_epochs,
               self.qat_epochs) < 0 or \
                min(self.calibration_images, self.parity_images) < 1:
            raise UserError("steps and threads must be >= 0, calibration/parity images >= 1")
        if self.qat and self.precision != "int8":
            raise UserError("quantization-aware fine-tuning (qat) makes an int8 engine; ask for "
                            "precision int8")
        if self.qat_export not in ("nncf", "requantize"):
            raise UserError(f"unknown QAT export {self.qat_export!r}; use nncf or requantize")
        if self.ptq not in PTQ_LIBRARIES:
            raise UserError(f"unknown post-training quantizer {self.ptq!r}; use onnxruntime or nncf")

    def steps(self, data: Any) -> tuple[int, int]:
        """(fine-tuning steps, QAT steps) for ``data``: explicit steps, else epochs."""
        from .finetune import steps_per_epoch

        spe = steps_per_epoch(data) if data is not None else 0
        ft = self.finetune_steps or int(round(self.finetune_epochs * spe))
        qs = self.qat_steps or max(1, int(round(self.qat_epochs * spe)))
        return ft, qs

    def emitter(self) -> Emitter:
        """The registered emitter this request asks for, checked (runtime installed,
        device and precision supported): the first thing that can fail, before any work."""
        return get_emitter(self.backend, self.device, self.precision, self.threads,
                           ptq=self.ptq)


def wants_qat(quantization: str, backend: str, precision: str) -> bool:
    """Whether an int8 request ``quantization`` (qat, ptq or auto) fine-tunes with QAT.

    ``auto``: QAT (NNCF's own Q/DQ) for every backend but ONNX Runtime, which ran that Q/DQ
    placement 5-10x slower than fp32 on tiny-32 while its own post-training recipe was as
    accurate as fp32 (benchmarks/RESULTS.md); a runtime whose converter offers post-training
    quantization only (LiteRT) gets it. Never QAT for a precision other than int8."""
    from .registry import emitter_class

    if quantization not in QUANTIZATION:
        raise UserError(f"quantization takes qat, ptq or auto, not {quantization!r}")
    if precision != "int8":
        return False
    return quantization == "qat" or (quantization == "auto" and backend != "onnxruntime"
                                     and emitter_class(backend).offers_qat)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _outputs(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i:i + 1]), np.float32).reshape(1, -1)
                           for i in range(len(x))])


def _parity(ref32: np.ndarray, got: np.ndarray, precision: str, labels: np.ndarray | None,
            reference: str) -> dict[str, Any]:
    d: dict[str, Any] = {"images": int(len(ref32)),
                         "max_abs_diff": float(np.max(np.abs(ref32 - got))),
                         "top1_agreement": float(np.mean(ref32.argmax(1) == got.argmax(1))),
                         "reference": reference}
    if labels is None:
        d["inputs"] = "random (no --data): agreement on noise is a weak check"
    d["criterion"] = ("max_abs_diff <= 1e-4" if precision == "fp32" else
                      "top1_agreement >= 0.99 (int8/fp16 engines)")
    d["ok"] = bool(d["max_abs_diff"] <= 1e-4 if precision == "fp32"
                   else d["top1_agreement"] >= 0.99)
    return d


def prediction(table: Any, space: Any, arch: Any, emitter: Emitter, measured_meta: Mapping,
               recipe: str = "onnxruntime") -> dict[str, Any]:
    """The table's figure for ``arch`` and, plainly, every way the table does not match."""
    if table is None:
        return {"predicted_ms": None, "note": "no device table given or shipped for this "
                "space, backend, device and precision"}
    meta = table.meta
    pred = table.predict(space, arch)
    mismatch = []
    if meta.get("backend") != emitter.profiler:
        mismatch.append(f"table backend {meta.get('backend')!r}, engine runs on {emitter.profiler!r}")
    if meta.get("precision") != emitter.precision:
        mismatch.append(f"table precision {meta.get('precision')!r}, engine {emitter.precision!r}")
    dev = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
    here = measured_meta.get("device") or {}
    # the kind of device (cuda:1 and cuda are one kind; which GPU, the fingerprint says)
    if device_kind(str(dev.get("target", "cpu"))) != emitter.device_kind:
        mismatch.append(f"table device {dev.get('target')!r}, engine {emitter.device!r}")
    if here and isinstance(dev, Mapping):
        from hwnas_profilers.fingerprint import differences

        diff = differences(dict(dev), dict(here))
        if diff:
            mismatch.append("table measured on another machine: " + "; ".join(diff))
    if meta.get("threads") not in (None, emitter.threads) and emitter.threads:
        mismatch.append(f"table threads {meta.get('threads')}, engine {emitter.threads}")
    if emitter.name == "torch-aoti":
        mismatch.append("the table times blocks eagerly; the engine is AOTInductor-compiled")
    if recipe and emitter.precision == "int8" and recipe != "onnxruntime":
        mismatch.append("the table's int8 blocks carry ONNX Runtime's Q/DQ placement; this "
                        f"engine carries {recipe}'s (ONNX Runtime ran NNCF's 4-6x slower)")
    drift = host_drift(meta, measured_meta)
    return {"predicted_ms": pred.latency_ms, "predicted_upper_ms": pred.upper_ms,
            "additive_ms": pred.additive_ms, **drift,
            "table": table.describe_source(), "table_date": meta.get("date"),
            "statistic": table.figure, "matches": not mismatch, "mismatch": mismatch}


def host_drift(table_meta: Mapping, measured_meta: Mapping) -> dict[str, Any]:
    """How much slower (positive) the host ran the reference graph while the engine was
    measured than while the table was profiled. Why: this shared host switches between
    phases minutes long (a tiny-32 network's floor 0.20 ms in one, 0.33 ms in another);
    an engine measured in a slower phase than its table misses the prediction by the
    phase, not by the table. The prediction is not corrected by it (tried: a phase
    correction of the floor by the reference was 13% off, ``hwnas_profilers.protocol``); the
    figure is recorded so a reader can tell the two apart."""
    ref = table_meta.get("reference") if isinstance(table_meta.get("reference"), Mapping) else {}
    # each run's own floor of the reference (not the machine's best, which both share)
    # (tables profiled before run_floor_ms existed: their recorded floor)
    then = ref.get("run_floor_ms") or ref.get("floor_ms")
    now = measured_meta.get("reference_floor_ms")
    if not (isinstance(then, (int, float)) and isinstance(now, (int, float)) and then > 0):
        return {"host_drift": None}
    return {"table_reference_floor_ms": float(then), "reference_floor_ms": float(now),
            "host_drift": float(now) / float(then) - 1.0}


def build_engine(space: Any, arch: Any, supernet: Any, data: Any | None, req: EngineRequest,
                 out: "str | Path", table: Any = None, force: bool = False,
                 say: Say = lambda s: None, extra: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Build, verify and measure one engine into ``out``; returns its manifest."""
    from . import quantize as qz

    out = Path(out).absolute()
    if out.exists() and not force:
        raise UserError(f"{out} exists; replace it with force (the old engine is kept until "
                        "the new one is complete), or choose another output folder")
    if os.path.lexists(out):
        replaceable(out)
    if req.qat and data is None:
        raise UserError("quantization-aware fine-tuning (qat) needs data to train on")
    arch.validate(space)
    input_shape = (1, space.input[2], space.input[0], space.input[1])
    calib = qz.calibration_images(data, input_shape, req.calibration_images, req.seed)
    emitter = req.emitter()  # missing runtime / unsupported precision: before any work
    if req.qat and not emitter.offers_qat:
        raise UserError(f"{emitter.name} int8 engines are post-training quantized by the "
                        "runtime's own converter; quantization-aware fine-tuning is not "
                        "offered for it")
    if req.qat or req.ptq == "nncf":
        qz.quiet_nncf()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)  # mkdtemp's 0700 would survive the rename
    except OSError as exc:
        raise UserError(f"cannot write under {out.parent}: {exc.strerror or exc}") from None
    try:
        built = _build(space, arch, supernet, data, req, emitter, stage, calib,
                       input_shape, table, say, dict(extra or {}))
        built = replace(built, engine={**built.engine, "path": str(out / built.engine["file"])})
        manifest = built.to_json()
        write_json_atomic(stage / "manifest.json", manifest)
        _swap_in(stage, out)
        return manifest
    except OSError as exc:
        raise UserError(f"writing the engine under {out.parent} failed: "
                        f"{exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def replaceable(out: Path) -> None:
    """Refuse to replace ``out`` unless it is a real folder holding an engine manifest:
    ``force`` replaces an engine hwnas made, never a folder of the user's own files, and
    never follows a link to somewhere else."""
    from hwnas_profilers.fileformat import FormatError

    if out.is_symlink():
        raise UserError(f"{out} is a symbolic link; hwnas replaces only an engine folder it "
                        "made, not a link (give the folder's real path, or another output "
                        "folder)")
    if not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return  # an empty folder holds nothing to lose
    m = out / "manifest.json"
    try:
        if m.is_symlink() or not m.is_file():
            raise FormatError("no manifest")
        read_manifest(m)
    except (FormatError, UserError):
        raise UserError(f"{out} holds no hwnas engine manifest, so it is not an engine hwnas "
                        "made, and only those are replaced; move its files or choose another "
                        "output folder") from None


def _swap_in(stage: Path, out: Path) -> None:
    if os.path.lexists(out):
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(stage, out)
        _remove(old)
    else:
        os.replace(stage, out)


def _remove(path: Path) -> None:
    """Remove what the swap put aside (a link is unlinked, never followed)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _build(space, arch, supernet, data, req: EngineRequest, emitter: Emitter, stage: Path,
           calib: np.ndarray, input_shape, table, say: Say, extra: dict) -> EngineManifest:
    from . import model_file as mf

    acc: dict[str, Any] = {}
    ft_steps, qat_steps = req.steps(data)
    folded = _finetuned(supernet, arch, data, req.seed, ft_steps, acc, say)
    src = stage / "source"
    src.mkdir()
    fp32 = mf.export_fp32(folded, input_shape, src / "model_fp32.onnx")
    q = _in_precision(req, emitter, folded, fp32, input_shape, calib, data, qat_steps, acc, say)
    # preprocessing, labels and architecture travel inside every ONNX file (and the IR)
    meta = mf.model_metadata(space, arch, data)
    for f in sorted(src.glob("*.onnx")):
        mf.stamp_onnx(f, meta)
    files = ModelFiles(req.precision, fp32, q.onnx, q.module, input_shape, calib, meta)
    say(f"emitting the {emitter.name} {req.precision} engine")
    info = emitter.emit(files, stage)
    quant = q.quant
    if quant is not None and isinstance(info.get("quantization"), dict):
        quant.update(info.pop("quantization"))  # the emitter's own recipe, in its words
    # an engine taking another layout or dtype (LiteRT: NHWC, int8) says how its input differs
    pre_engine = info.pop("preprocessing", None) or {}
    engine = stage / info["file"]
    if engine.suffix == ".onnx":  # ONNX Runtime's save keeps them; another emitter's may not
        mf.stamp_onnx(engine, meta)
    parity = _verify(engine, emitter, q.reference, data, req, input_shape, acc)

    measured: dict[str, Any] = {"measured_ms": None}
    pred = {"predicted_ms": None}
    if req.measure:
        say(f"measuring {engine.name} on {emitter.profiler}")
        measured = _measure(engine, emitter, req, input_shape,
                            table.figure if table is not None else "floor")
        pred = prediction(table, space, arch, emitter, measured.get("meta", {}), _recipe(req))

    from .. import __version__

    return EngineManifest(
        architecture=arch.to_dict(), space=space.name, space_id=space.id,
        engine={"backend": emitter.name, "precision": req.precision,
                   "device": emitter.device, "threads": req.threads,
                   "input_shape": list(input_shape), "input_dtype": "float32",
                   "output": f"logits [1, {space.classes}] float32",
                   **info,  # an engine taking NHWC or int8 input says so itself
                   "sha256": {f: _sha256(stage / f) for f in info["files"]}},
        runtime=emitter.runtime(),
        sources={p.name: _sha256(p) for p in sorted(src.iterdir())},
        quantization=quant,
        finetune_steps=ft_steps,
        parity=parity, accuracy=acc,
        latency=latency_section(measured, pred),
        device=(measured.get("meta") or {}).get("device") or _fingerprint(emitter),
        preprocessing=({**data.preprocessing(space.input),
                        "input_layout": info.get("input_layout", "NCHW"), **pre_engine}
                       if data is not None else None),
        request=asdict(req), extra=extra,
        tool=f"hwnas {__version__}",
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def _finetuned(supernet: Any, arch: Any, data: Any, seed: int, steps: int,
               acc: dict[str, Any], say: Say) -> Any:
    """The sub-network with inherited weights, fine-tuned for ``steps`` when there is data
    (its validation accuracy before and after into ``acc``), with batch norm folded."""
    from . import finetune as ft

    net = ft.standalone(supernet, arch, data, seed)
    if data is not None:
        from ..train.loop import accuracy

        acc["val_inherited"] = accuracy(net, data.val_x, data.val_y)
        if steps:
            say(f"fine-tuning {arch.notation()} for {steps} steps")
        ft.finetune(net, data, steps, seed)
        acc["val_fp32_torch"] = accuracy(net, data.val_x, data.val_y)
    return ft.fold_bn(net)


@dataclass(frozen=True)
class _InPrecision:
    """The network in the engine's precision: the ONNX file the emitter builds from, the
    module it may lower instead, the network parity compares with, and the recipe."""

    onnx: Path
    module: Any
    reference: Any
    quant: dict[str, Any] | None = None


def _in_precision(req: EngineRequest, emitter: Emitter, folded: Any, fp32: Path,
                  input_shape: tuple[int, ...], calib: np.ndarray, data: Any, qat_steps: int,
                  acc: dict[str, Any], say: Say) -> _InPrecision:
    from . import quantize as qz

    if req.precision == "fp32":
        return _InPrecision(fp32, folded, folded)
    if req.precision == "fp16":
        return _InPrecision(qz.export_fp16(fp32, fp32.parent / "model_fp16.onnx"), folded,
                            folded)
    if req.qat and emitter.quantizes_module:
        # the runtime's own QAT flow from the module (ExecuTorch: PT2E prepare_qat_pt2e);
        # its converted network is what the engine lowers and what parity compares with
        module = emitter.quantize_aware(folded, data, qat_steps, req.seed, say)
        acc["val_int8_torch_fakequant"] = _torch_acc(module, data)
        return _InPrecision(fp32, module, module, {
            "steps": qat_steps, "bn": "folded before QAT", "calibration_images": int(len(calib))})
    if req.qat:
        return _nncf_qat(req, folded, fp32, input_shape, calib, data, qat_steps, acc, say)
    if (emitter.name == "openvino" and req.ptq == "nncf") or emitter.quantizes_module:
        onnx_path = fp32  # the emitter quantizes (the IR, or the module) itself
    else:
        say(f"post-training quantization ({req.ptq}) on {len(calib)} images")
        onnx_path = qz.ptq_onnx(fp32, fp32.parent / "model_int8_qdq.onnx", calib, req.ptq)
    return _InPrecision(onnx_path, folded, folded, {
        "method": f"post-training quantization ({req.ptq})",
        "weights": "int8 symmetric per-channel", "activations": "int8",
        "bn": "folded", "calibration_images": int(len(calib)),
        "calibration_data": "training split" if data is not None else "random inputs"})


def _nncf_qat(req: EngineRequest, folded: Any, fp32: Path, shape: tuple[int, ...],
              calib: np.ndarray, data: Any, steps: int, acc: dict[str, Any],
              say: Say) -> _InPrecision:
    """int8 by NNCF's quantization-aware fine-tuning, written as NNCF's own Q/DQ or as the
    QAT-adapted weights re-quantized by the post-training recipe (``req.qat_export``)."""
    from . import model_file as mf
    from . import quantize as qz

    src = fp32.parent
    native = req.qat_export == "nncf"
    adapted, fq, stripped = qz.qat(folded, data, steps, req.seed, calib, say, native)
    acc["val_int8_torch_fakequant"] = _torch_acc(fq, data)
    acc["val_fp32_torch_qat_weights"] = _torch_acc(adapted, data)
    qat32 = mf.export_fp32(adapted, shape, src / "model_fp32_qat.onnx")
    if native:
        onnx_path = mf.export_fp32(stripped, shape, src / "model_int8_qdq.onnx")
        how = "Q/DQ of NNCF's own trained quantizers (nncf.strip NATIVE)"
    else:
        onnx_path = qz.ptq_onnx(qat32, src / "model_int8_qdq.onnx", calib, req.ptq)
        how = f"QAT-adapted weights re-quantized by {req.ptq} on the same images"
    # the network the int8 file was written from is what parity compares with
    return _InPrecision(onnx_path, adapted, fq if native else adapted, {
        "method": f"quantization-aware fine-tuning (NNCF fake quantizers); {how}",
        "steps": steps, "weights": "int8 symmetric per-channel",
        "activations": "int8", "bn": "folded before QAT",
        "calibration_images": int(len(calib))})


def _verify(engine: Path, emitter: Emitter, reference: Any, data: Any, req: EngineRequest,
            input_shape: tuple[int, ...], acc: dict[str, Any]) -> dict[str, Any]:
    """Parity of the engine file, loaded by its runtime, against ``reference`` in PyTorch;
    the engine's validation and held-out test accuracy into ``acc``."""
    import torch

    if data is not None:
        x = data.val_x[:req.parity_images].numpy().astype(np.float32)
        labels = data.val_y[:req.parity_images].numpy()
    else:
        x = np.random.default_rng(req.seed + 1).standard_normal(
            (min(req.parity_images, 32), *input_shape[1:])).astype(np.float32)
        labels = None
    with torch.no_grad():
        ref = reference(torch.from_numpy(x)).numpy()
    sess = emitter.session(engine, input_shape)
    got = _outputs(sess, x)
    parity = _parity(ref, got, req.precision, labels,
                     ("the QAT network with NNCF's fake quantizers in PyTorch" if
                      req.qat_export == "nncf" else "the fp32 PyTorch network carrying the "
                      "QAT-adapted weights (BN folded)") if req.qat
                     else "the fine-tuned fp32 PyTorch network (BN folded)")
    if labels is not None:
        acc["val_engine"] = float(np.mean(got.argmax(1) == labels))
        acc["val_images_engine"] = int(len(labels))
        acc["split"] = ("validation split of the supernet's data (also used to pick the "
                        "architecture: not a held-out test figure)")
    if data is not None and data.has_test:
        _test_accuracy(sess, reference, data, acc)
    return parity


def _test_accuracy(sess: Callable[[np.ndarray], np.ndarray], reference: Any, data: Any,
                   acc: dict[str, Any]) -> None:
    """The held-out test split: no part in training, in the accuracy table, or in the
    choice of this architecture; the engine file itself classifies every image."""
    import torch

    tx = data.test_x.numpy().astype(np.float32)
    ty = data.test_y.numpy()
    acc["test_engine"] = float(np.mean(_outputs(sess, tx).argmax(1) == ty))
    acc["test_images"] = int(len(ty))
    with torch.no_grad():
        acc["test_torch"] = float(np.mean(
            reference(torch.from_numpy(tx)).numpy().argmax(1) == ty))
    acc["test_split"] = ("held-out test split: took no part in training, in the accuracy "
                         "table or in choosing the architecture")


def _fingerprint(emitter: Emitter) -> dict[str, Any]:
    from hwnas_profilers.fingerprint import fingerprint

    return {**fingerprint(include_gpu=emitter.device_kind != "cpu"),
            "target": emitter.device.lower()}


def _torch_acc(module: Any, data: Any) -> float:
    from ..train.loop import accuracy

    return accuracy(module, data.val_x, data.val_y)


def _recipe(req: EngineRequest) -> str:
    return ("nncf" if (req.qat and req.qat_export == "nncf") or
            (req.precision == "int8" and req.ptq == "nncf") else "onnxruntime")


def latency_section(measured: Mapping[str, Any], pred: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's ``latency``: the engine file's measurement beside the prediction."""
    err = None
    if pred.get("predicted_ms") and measured.get("measured_ms"):
        err = (pred["predicted_ms"] - measured["measured_ms"]) / measured["measured_ms"]
    return {**{k: v for k, v in measured.items() if k != "meta"}, **pred,
            "prediction_error": err, "protocol": (measured.get("meta") or {}).get("protocol")}


def attach_measurement(manifest_path: "str | Path", measured: Mapping[str, Any], table: Any,
                       space: Any, arch: Any, req: EngineRequest) -> EngineManifest:
    """Write a measurement made elsewhere (``hwnas run`` times every engine file in one
    interleaved run with its baselines: one noise history, one protocol wait) into the
    engine's manifest, exactly as :func:`build_engine` writes its own; returns it."""
    from ..fileio import write_json_atomic

    m = EngineManifest.from_json(read_manifest(manifest_path))
    emitter = req.emitter()
    pred = prediction(table, space, arch, emitter, measured.get("meta", {}), _recipe(req))
    m = replace(m, latency=latency_section(measured, pred),
                device=(measured.get("meta") or {}).get("device") or m.device).with_run(
        measured_with="hwnas run: interleaved with the other engines and the baselines")
    write_json_atomic(manifest_path, m.to_json())
    return m


def measured_fields(r: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`hwnas_profilers.measure_model`'s result as a manifest's measured fields."""
    return {"measured_ms": r["figure_ms"], "measured_statistic": r["figure"],
            "measured_median_ms": r["median_ms"], "measured_spread_ms": r["spread_ms"],
            "measured_p25_ms": r["p25_ms"], "measured_p75_ms": r["p75_ms"],
            "measured_p90_ms": r["p90_ms"], "measured_min_ms": r["min_ms"],
            "measured_n": r["n"], "measured_span_s": r["span_s"],
            "measured_stable": r["stable"], "session_figures_ms": r["session_figures_ms"],
            "overhead_ms": r["overhead_ms"],
            "meta": {**r["meta"], "reference_floor_ms": r.get("reference_run_floor_ms")}}


def _measure(engine: Path, emitter: Emitter, req: EngineRequest, input_shape,
             figure: str = "floor") -> dict[str, Any]:
    """The engine end to end, by the statistic its table predicts (``figure``)."""
    from ..profiling import profiler_errors

    with profiler_errors():
        from hwnas_profilers import Protocol, Settings, measure_model

        proto = Protocol.quick() if req.quick else Protocol()
        r = measure_model(engine, emitter.profiler,
                          Settings(device=emitter.device.lower(), precision=req.precision,
                                   threads=req.threads),
                          replace(proto, figure=figure), input_shape=input_shape)
    return measured_fields(r)


def read_manifest(path: "str | Path") -> dict[str, Any]:
    """An engine manifest read back as input: bounded, its header and kind checked."""
    from ..fileio import check_header, read_json

    d = read_json(path, "engine manifest")
    check_header(d, MANIFEST_KIND, MANIFEST_SCHEMA, f"engine manifest {path}",
                 "engine manifest", EngineError)
    return d
