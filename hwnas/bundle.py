"""Block bundles: one ONNX file per unique block of a space, plus a manifest.

The bundle is what a device-side profiling run reads (``hwnas-profilers profile DIR``),
so the manifest is self-sufficient: the ``hwnas_profilers`` package never imports hwnas or torch.
It may also hold a few whole networks of the space, measured end to end on the device to
calibrate the additive latency model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from hwnas_profilers.base import Progress
from hwnas_profilers.fileformat import KINDS

from .arch import sample_architecture
from .fileio import write_json_atomic
from .spaces import SearchSpace

BUNDLE_KIND = "hwnas.block_bundle"
BUNDLE_SCHEMA = KINDS[BUNDLE_KIND]
MANIFEST = "manifest.json"


#: bundle formats beside ONNX, for runtimes that cannot convert on the device: format ->
#: the host module that writes them, with ``require_converter()`` (a missing converter is
#: one line naming the extra) and ``write_bundle_files(make_module, input_shape, out,
#: stem, precisions) -> {precision: file}`` (files already present are kept)
FORMATS = {"litert": "hwnas.engines.litert", "executorch": "hwnas.engines.executorch"}


def format_writer(fmt: str) -> Any:
    """The module writing bundles of ``fmt``, its converter checked to be installed."""
    import importlib

    from .errors import UserError

    if fmt not in FORMATS:
        raise UserError(f"no block bundle format {fmt!r}; formats: onnx, {', '.join(FORMATS)}")
    mod = importlib.import_module(FORMATS[fmt])
    mod.require_converter()
    return mod


def export_bundle(space: SearchSpace, out_dir: "str | Path", calibration_nets: int = 0,
                  seed: int = 0, progress: Progress | None = None,
                  batch: int = 1, fmt: str = "onnx",
                  precisions: tuple[str, ...] = ("fp32",)) -> dict[str, Any]:
    """Write ``blocks/<key>.onnx`` for every unique block and ``manifest.json``; with
    another ``fmt`` (:data:`FORMATS`), that runtime's files in each of ``precisions``.

    Files already present are kept (a re-run only adds what is missing).
    """
    if fmt != "onnx":
        return _export_converted(space, Path(out_dir), calibration_nets, seed, progress,
                                 batch, format_writer(fmt), fmt, tuple(precisions))
    from .nn.export import OPSET, export_architecture, export_block

    out = Path(out_dir)
    (out / "blocks").mkdir(parents=True, exist_ok=True)
    blocks = space.unique_blocks()
    fixed = {b.key() for b in space.fixed_blocks()}
    entries = []
    total = len(blocks) + calibration_nets
    for i, b in enumerate(blocks):
        rel = f"blocks/{b.key()}.onnx"
        if not (out / rel).is_file():
            export_block(b, out / rel, seed=seed, batch=batch)
        entries.append({"key": b.key(), "file": rel, "input_shape": [batch, b.cin, b.h, b.w],
                        "role": "fixed" if b.key() in fixed else "candidate"})
        if progress:
            progress("exporting", i + 1, total)
    nets = []
    for j in range(calibration_nets):
        arch = sample_architecture(space, seed=seed * 1000 + j)
        rel = f"networks/net{j:03d}.onnx"
        if not (out / rel).is_file():
            export_architecture(space, arch, out / rel, seed=seed, batch=batch)
        nets.append({"name": f"net{j:03d}", "file": rel, "choices": list(arch.choices),
                     "blocks": [b.key() for b in arch.blocks(space)],
                     "input_shape": [batch, space.input[2], space.input[0], space.input[1]]})
        if progress:
            progress("exporting", len(blocks) + j + 1, total)
    manifest = {"schema": BUNDLE_SCHEMA, "kind": BUNDLE_KIND, "space": space.name,
                "space_id": space.id, "opset": OPSET, "blocks": entries, "networks": nets}
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def _export_converted(space: SearchSpace, out: Path, calibration_nets: int, seed: int,
                      progress: Progress | None, batch: int, writer: Any, fmt: str,
                      precisions: tuple[str, ...]) -> dict[str, Any]:
    """:func:`export_bundle` for a format converted on the host (one file per precision)."""
    from .nn.export import block_module
    from .nn.subnet import build_subnet

    blocks = space.unique_blocks()
    fixed = {b.key() for b in space.fixed_blocks()}
    total = len(blocks) + calibration_nets
    entries, nets = [], []
    for i, b in enumerate(blocks):
        shape = [batch, b.cin, b.h, b.w]
        files = writer.write_bundle_files(lambda b=b: block_module(b, seed), shape, out,
                                          f"blocks/{b.key()}", precisions)
        entries.append({"key": b.key(), "file": files[precisions[0]], "files": files,
                        "input_shape": shape,
                        "role": "fixed" if b.key() in fixed else "candidate"})
        if progress:
            progress("exporting", i + 1, total)
    shape = [batch, space.input[2], space.input[0], space.input[1]]
    for j in range(calibration_nets):
        arch = sample_architecture(space, seed=seed * 1000 + j)
        files = writer.write_bundle_files(lambda a=arch: build_subnet(space, a, seed).eval(),
                                          shape, out, f"networks/net{j:03d}", precisions)
        nets.append({"name": f"net{j:03d}", "file": files[precisions[0]], "files": files,
                     "choices": list(arch.choices),
                     "blocks": [b.key() for b in arch.blocks(space)], "input_shape": shape})
        if progress:
            progress("exporting", len(blocks) + j + 1, total)
    manifest = {"schema": BUNDLE_SCHEMA, "kind": BUNDLE_KIND, "space": space.name,
                "space_id": space.id, "format": fmt, "precisions": list(precisions),
                "input_layout": getattr(writer, "INPUT_LAYOUT", "NCHW"),
                "blocks": entries, "networks": nets}
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def precision_files(make_module: Callable[[], Any], out: Path, name: Callable[[str], Path],
                    write: Callable[[Any, Path, str], None],
                    precisions: Sequence[str]) -> dict[str, str]:
    """One module's bundle files in each of ``precisions`` (``name(precision)``: the
    runtime profiler's naming rule, relative to ``out``), each written by ``write`` only when
    absent; the module is built at most once, and only when a file is missing."""
    files: dict[str, str] = {}
    module = None
    for prec in precisions:
        rel = name(prec)
        if not (out / rel).is_file():
            module = module if module is not None else make_module()
            write(module, out / rel, prec)
        files[prec] = rel.as_posix()
    return files
