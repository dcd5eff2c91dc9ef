"""The fp32 ONNX file of the chosen network, and the metadata a deployment needs in it.

The file every precision copy (:mod:`hwnas.engines.quantize`) and every ONNX-family engine
is built from; its metadata (preprocessing, labels, architecture, space) is written into
the engine files too, so a deployment reads it from the file it loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import require


def export_fp32(net: Any, input_shape: tuple[int, ...], path: Path) -> Path:
    from ..nn.export import export_onnx

    return export_onnx(net, tuple(input_shape[1:]), path)


def model_metadata(space: Any, arch: Any, data: Any | None) -> dict[str, str]:
    """What a deployment needs beside the weights, as string pairs for an engine file's own
    metadata (ONNX ``metadata_props``, OpenVINO ``rt_info``): preprocessing and class labels,
    the architecture and its space. The manifest carries the same, with the rest."""
    import json

    meta = {"hwnas.space": f"{space.name} {space.id}",
            "hwnas.architecture": ",".join(arch.choices)}
    if data is not None:
        # the layout of the ONNX/IR input; an engine of another layout (LiteRT: NHWC) says
        # its own in the manifest
        pre = {**data.preprocessing(space.input), "input_layout": "NCHW"}
        meta["hwnas.preprocessing"] = json.dumps(pre, sort_keys=True)
        meta["hwnas.labels"] = json.dumps(pre["labels"])
    return meta


def stamp_onnx(path: Path, metadata: Mapping[str, str]) -> Path:
    """Write ``metadata`` into the ONNX file's ``metadata_props`` (ONNX Runtime reads them
    back as ``session.get_modelmeta().custom_metadata_map``); same keys are replaced. A
    file that already carries them is left as it is (not rewritten)."""
    onnx = require("onnx", "torch")
    model = onnx.load(str(path))
    have = {p.key: p.value for p in model.metadata_props}
    if all(have.get(k) == v for k, v in metadata.items()):
        return path
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for k, v in [*keep, *metadata.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path
