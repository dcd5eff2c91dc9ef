"""Block bundles: one ONNX file per unique block of a space, plus a manifest.

The bundle is what a device-side profiling run reads (``hwnas-profilers profile DIR``),
so the manifest is self-sufficient: the ``hwnas_profilers`` package never imports hwnas or torch.
It may also hold a few whole networks of the space, measured end to end on the device to
calibrate the additive latency model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas_profilers.base import Progress
from hwnas_profilers.fileformat import KINDS

from .arch import sample_architecture
from .fileio import write_json_atomic
from .spaces import SearchSpace

BUNDLE_KIND = "hwnas.block_bundle"
BUNDLE_SCHEMA = KINDS[BUNDLE_KIND]
MANIFEST = "manifest.json"


def export_bundle(space: SearchSpace, out_dir: "str | Path", calibration_nets: int = 0,
                  seed: int = 0, progress: Progress | None = None,
                  batch: int = 1) -> dict[str, Any]:
    """Write ``blocks/<key>.onnx`` for every unique block and ``manifest.json``.

    Files already present are kept (a re-run only adds what is missing).
    """
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
