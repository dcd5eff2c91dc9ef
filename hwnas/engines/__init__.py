"""Engine files: the chosen network fine-tuned (QAT for int8) and emitted for a runtime.

One emitter per runtime behind :class:`~hwnas.engines.base.Emitter`, registered through
the entry-point group ``hwnas.emitters`` (the built-ins too): ``onnxruntime`` (the model
as ONNX Runtime optimises and saves it), ``openvino`` (IR ``.xml``/``.bin``), ``tensorrt``
(serialized plan, built on the target GPU) and ``torch-aoti`` (AOTInductor ``.pt2``).
Precision lives in the model file (fp32, fp16 and Q/DQ int8 ONNX); each engine comes with
a manifest holding its measured latency beside the predicted one.

Library use::

    from hwnas.engines import EngineRequest, export_engine
    manifest = export_engine("arch.json", "runs/default/train/supernet.pt",
                             EngineRequest(backend="openvino", precision="int8", qat=True),
                             out="engines/ov_int8", data="digits")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import PRECISIONS, Emitter, EngineError, ModelFiles
from .build import (MANIFEST_KIND, MANIFEST_SCHEMA, PTQ_LIBRARIES, QUANTIZATION,
                    EngineRequest, build_engine, read_manifest, wants_qat)
from .registry import available_emitters, emitter_class, get_emitter

__all__ = ["PRECISIONS", "Emitter", "EngineError", "ModelFiles", "EngineRequest",
           "build_engine", "export_engine", "read_manifest",
           "available_emitters", "emitter_class", "get_emitter", "MANIFEST_KIND",
           "MANIFEST_SCHEMA", "default_table", "QUANTIZATION", "PTQ_LIBRARIES", "wants_qat"]


def default_table(space: Any, backend: str, device: str, precision: str) -> Any:
    """The shipped device table matching an engine, or None."""
    from hwnas_profilers.base import device_kind

    from ..tables.device import load_device_table, shipped_table_path

    profiler = emitter_class(backend).profiler  # cuda:1 takes the table of cuda
    name = f"{space.name}_{profiler}_{device_kind(device)}_{precision}"
    path = shipped_table_path(name)
    if path is None:
        return None
    table = load_device_table(path)
    return table if table.space_id == space.id else None


def export_engine(arch_ref: "str | Path", checkpoint: "str | Path", req: EngineRequest,
                  out: "str | Path", data: str | None = None, table: "str | Path | None" = None,
                  force: bool = False, say=lambda s: None) -> dict[str, Any]:
    """Load the architecture, supernet checkpoint, data and table; build one engine."""
    from ..arch import load_architecture
    from ..errors import ArchitectureError
    from ..tables.device import load_device_table
    from ..train.checkpoint import load_checkpoint

    req.emitter()  # unknown backend, missing runtime, unsupported precision: fail first
    ck = load_checkpoint(checkpoint)
    space = ck.target  # the checkpoint carries its space, built-in or a user's file
    try:
        _, arch = load_architecture(arch_ref)
    except ArchitectureError:  # a custom space: the checkpoint's own
        _, arch = load_architecture(arch_ref, space)
    try:
        arch.validate(space)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{exc}; the supernet {checkpoint} is for {space.name}") from None
    supernet = _supernet_for(ck, space, checkpoint)
    dev_table = load_device_table(table) if table else default_table(space, req.backend,
                                                                     req.device, req.precision)
    split = ck.data_split(data, space, req.seed, f"checkpoint {checkpoint}") if data else None
    return build_engine(space, arch, supernet, split, req, out, dev_table, force, say,
                        {"supernet": str(Path(checkpoint).absolute())})


def _supernet_for(ck: Any, space: Any, path: Any) -> Any:
    """The supernet at ``space``'s full size (a resolution proxy's weights fit it too)."""
    from ..train.supernet import Supernet

    if ck.space.id == space.id:
        return ck.supernet().eval()
    net = Supernet(space, unshared=ck.unshared)
    try:
        net.load_state_dict(dict(ck.model), strict=True)
    except RuntimeError:
        raise EngineError(f"checkpoint {path} was trained on a reduced proxy of {space.name} "
                          f"({ck.space.name}) whose weights do not fit the full network") from None
    return net.eval()
