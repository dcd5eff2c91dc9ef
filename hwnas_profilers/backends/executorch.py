"""ExecuTorch with the XNNPACK delegate: ``.pte`` programs run by ``executorch.runtime``.

ExecuTorch's Python runtime imports torch, so this backend is the one stated exception to
"the device side never imports torch". It is also the one owner of the recipe both sides
share (style rule 11): :func:`lower` (``torch.export`` -> ``to_edge_transform_and_lower``
with ``XnnpackPartitioner`` -> ``.pte``) and :func:`int8_quantizer` (torchao's PT2E flow
with ``XNNPACKQuantizer``, symmetric per-channel weights, int8 activations) make the block
files of a bundle and the engine files alike.

Files: a bundle holds ``blocks/K.pte`` (fp32) and ``blocks/K.int8.pte`` (int8) for every
block (:func:`precision_file`); every program hwnas writes names its precision in a
constant method (``hwnas_precision``), so an engine's own int8 ``model.pte`` is measured as
it is and an fp32 program is never timed as int8. An ONNX file (the profilers' own
identity and reference graphs, or a user's block) is run as torch ops
(:func:`hwnas_profilers.backends.torch.compile_graph`, needs ``onnx``), lowered by the same
recipe in the table's precision (int8: calibrated on deterministic random inputs) and
cached.

Delegation: the whole program must run in the XNNPACK delegate. A program with any
operator outside it (ExecuTorch would run those on its portable CPU kernels) is refused
at load with the operators named, so in a table such a block is ``failed`` with that
reason, never a silent CPU fallback; every ``ok`` entry ran wholly in the delegate (the
table's meta says so: ``delegate``, ``delegation``).

Threads: XNNPACK runs on ExecuTorch's process-wide thread pool, reset to the table's count
when the profiler opens (``_unsafe_reset_threadpool``, the binding's one control) and given
back to the caller's count on ``close()``; a count above this machine's cores is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..base import Profiler, ProfilerError, Runner
from ..quiet import quiet_stderr
from . import _cached, fixed_input, fresh, seal

PRECISION_METHOD = "hwnas_precision"
DELEGATE = "XnnpackBackend"
IDENTIFIER = b"ET12"  # the flatbuffer file identifier of the program schema ExecuTorch 1.x reads
CALIBRATION_INPUTS = 8  # deterministic random inputs an ONNX file is calibrated on for int8


def calibration_input(shape: Sequence[int], i: int) -> Any:
    """The ``i``-th deterministic random calibration input of ``shape`` (numpy float32)."""
    import numpy as np

    return np.random.default_rng(1000 + i).standard_normal(tuple(int(d) for d in shape)
                                                           ).astype("float32")


def precision_file(path: "str | Path", precision: str) -> Path:
    """The bundle's file of ``path``'s block in ``precision``: ``K.pte`` (fp32) ->
    ``K.int8.pte``. The one naming rule of the bundle writer and this backend."""
    path = Path(path)
    stem = path.name[:-len(".pte")] if path.name.endswith(".pte") else path.stem
    for p in ("int8", "fp32"):
        stem = stem[:-len(p) - 1] if stem.endswith("." + p) else stem
    return path.with_name(stem + ("" if precision == "fp32" else f".{precision}") + ".pte")


def int8_quantizer(qat: bool = False) -> Any:
    """XNNPACK's PT2E quantizer: int8 symmetric per-channel weights, int8 activations."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)

    q = XNNPACKQuantizer()
    q.set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))
    return q


def exported(module: Any, example: Any, dynamic_shapes: Any = None) -> Any:
    """``module`` through ``torch.export`` as a graph module, with every global average
    pool written the way XNNPACK takes it (:func:`pooled_means_kept`)."""
    import torch

    with torch.no_grad():
        graph = torch.export.export(module, (example,), dynamic_shapes=dynamic_shapes).module()
        if pooled_means_kept(graph):
            # traced again: the quantizer reads the shapes every node carries, and the
            # rewritten nodes carry none
            graph = torch.export.export(graph, (example,),
                                        dynamic_shapes=dynamic_shapes).module()
    return graph


def pooled_means_kept(graph: Any) -> bool:
    """``x.mean((2, 3))`` of a 4-D tensor rewritten as ``x.mean((2, 3), keepdim=True)
    .flatten(1)`` (the same numbers), in place; True when it changed any. Why: XNNPACK's partitioner takes a mean
    over H and W only when it keeps the dims; the plain form, which every hwnas head uses
    before its classifier, stayed outside the delegate (``aten::mean`` on the portable
    CPU kernels) and every network failed the whole-program check."""
    import torch

    aten, g, changed = torch.ops.aten, graph.graph, False
    for node in list(g.nodes):
        if node.op != "call_function" or node.target != aten.mean.dim or node.kwargs.get("dtype"):
            continue
        x, dims = node.args[0], list(node.args[1])
        keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        val = x.meta.get("val") if hasattr(x, "meta") else None
        if keep or val is None or val.dim() != 4 or sorted(d % 4 for d in dims) != [2, 3]:
            continue
        with g.inserting_before(node):
            kept = g.call_function(aten.mean.dim, (x, dims, True))
            flat = g.call_function(aten.flatten.using_ints, (kept, 1))
        node.replace_all_uses_with(flat)
        g.erase_node(node)
        changed = True
    if changed:
        g.lint()
        graph.recompile()
    return changed


def quantize_ptq(module: Any, example: Any, calibration: Sequence[Any]) -> Any:
    """``module`` post-training quantized by PT2E: exported, observed on ``calibration``
    (batch-1 tensors), converted to Q/DQ torch ops."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with torch.no_grad():
        prepared = prepare_pt2e(exported(module, example), int8_quantizer())
        for x in calibration:
            prepared(x)
        return convert_pt2e(prepared)


def lower(module: Any, example: Any, precision: str) -> bytes:
    """The ``.pte`` program of ``module`` (int8: quantized by :func:`quantize_ptq` or the
    engines' QAT, both through :func:`exported`): ``torch.export``,
    ``to_edge_transform_and_lower`` with the XNNPACK partitioner, ``to_executorch``; its
    precision stored as the constant method ``hwnas_precision``."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    # an int8 module went through :func:`exported` before it was quantized; a second
    # round trip of its Q/DQ graph hides the weight pattern XNNPACK fuses
    source = exported(module, example) if precision == "fp32" else module
    with torch.no_grad():
        program = torch.export.export(source, (example,))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                       constant_methods={PRECISION_METHOD: precision})
    return bytes(edge.to_executorch().buffer)


def delegation(data: bytes, name: str = "program") -> tuple[list[str], list[str]]:
    """(delegates, operators outside them) of the ``forward`` method of a ``.pte``; a file
    that is not a whole program of this schema is one line."""
    if len(data) < 8 or data[4:6] != IDENTIFIER[:2]:
        raise ProfilerError(f"{name} is not an ExecuTorch program (no ET file identifier)")
    if data[4:8] != IDENTIFIER:
        raise ProfilerError(f"{name} is an ExecuTorch program of schema "
                            f"{data[4:8].decode('ascii', 'replace')}; this runtime reads "
                            f"{IDENTIFIER.decode()} (re-export it with this executorch)")
    from executorch.exir._serialize._program import deserialize_pte_binary

    try:
        pte = deserialize_pte_binary(data)
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt: the parser's own words
        raise ProfilerError(f"{name} is not a readable ExecuTorch program (truncated or "
                            f"corrupt: {' '.join(str(exc).split())[:160]})") from None
    program = getattr(pte, "program", pte)
    plans = [p for p in program.execution_plan if p.name == "forward"]
    if not plans:
        raise ProfilerError(f"{name} has no forward method")
    return [d.id for d in plans[0].delegates], [o.name for o in plans[0].operators]


def require_delegated(data: bytes, name: str) -> None:
    """Refuse a program that does not run wholly in the XNNPACK delegate."""
    delegates, outside = delegation(data, name)
    if outside:
        raise ProfilerError(f"{name}: {len(outside)} operator(s) outside the XNNPACK delegate "
                            f"({', '.join(sorted(set(outside)))[:200]}); ExecuTorch would run "
                            "them on its portable CPU kernels, so the block is not measured")
    if DELEGATE not in delegates:
        raise ProfilerError(f"{name}: nothing of it runs in the XNNPACK delegate "
                            f"(delegates: {', '.join(delegates) or 'none'})")


class _EtRunner(Runner):
    def __init__(self, program: Any, method: Any, inputs: list) -> None:
        import time

        # the program must outlive its method: the method's memory is the program's
        self._p, self._m, self._in, self._clock = program, method, inputs, time.perf_counter_ns

    def time_ms(self) -> float:
        t0 = self._clock()
        self._m.execute(self._in)
        return (self._clock() - t0) / 1e6

    def run(self, inputs: list) -> list:
        """The outputs for ``inputs`` (the engines' parity check runs the file this way)."""
        return list(self._m.execute(inputs))


@dataclass
class ExecuTorchProfiler(Profiler):
    name = "executorch"
    extra = "executorch"
    model_suffixes = (".pte", ".onnx")
    bundle_format = "executorch"  # .pte block files, exported on the host

    def check(self) -> None:
        try:
            with quiet_stderr():
                import executorch.extension.pybindings.portable_lib as binding
                from executorch.runtime import Runtime
                import executorch
        except ImportError as exc:
            raise self.missing("executorch", exc) from None
        self._et, self._binding, self._rt = executorch, binding, Runtime.get()
        if self.settings.device_kind != "cpu":
            raise self.unsupported(f"device {self.settings.device!r} (XNNPACK runs on the CPU)")
        self.check_precision()
        if not self._rt.backend_registry.is_available(DELEGATE):
            raise self.unsupported(f"anything: this executorch build has no {DELEGATE}")
        from ..bounds import cores

        if self.settings.n_threads > cores():
            raise ProfilerError(f"threads must be at most this machine's {cores()} logical "
                                f"cores, got {self.settings.n_threads}")
        with quiet_stderr():
            self._caller_threads = binding._threadpool_get_thread_count()
            binding._unsafe_reset_threadpool(self.settings.n_threads)

    def close(self) -> None:
        n, self._caller_threads = getattr(self, "_caller_threads", None), None
        if n:
            with quiet_stderr():
                self._binding._unsafe_reset_threadpool(n)

    def runtime(self) -> dict[str, Any]:
        from importlib import metadata

        try:
            version = metadata.version("executorch")
        except metadata.PackageNotFoundError:
            version = "unknown"
        return {"runtime": "executorch", "version": version, "delegate": DELEGATE,
                "delegation": "whole program: a block with any operator outside the XNNPACK "
                              "delegate is recorded as failed with the operators named; "
                              "every ok entry ran wholly in the delegate",
                "threadpool": f"ExecuTorch's pool reset to {self.settings.n_threads} thread(s)"}

    def devices(self) -> list[str]:
        return ["cpu"]

    def load(self, onnx_path: Path, input_shape: Sequence[int] | None) -> Runner:
        path = Path(onnx_path)
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        if path.suffix.lower() == ".onnx":
            path = self._from_onnx(path, input_shape)
        elif path.suffix.lower() != ".pte":
            raise ProfilerError(f"backend 'executorch' reads .pte (or .onnx) files, not "
                                f"{path.name}")
        program, data = self._program(self._in_precision(path))
        require_delegated(data, path.name)
        meta = program.metadata("forward")
        if meta.num_inputs() != 1:
            raise ProfilerError(f"{path.name} takes {meta.num_inputs()} inputs; hwnas "
                                "programs take one image tensor")
        shape = list(meta.input_tensor_meta(0).sizes())
        if input_shape is not None and [int(d) for d in input_shape] != shape:
            raise ProfilerError(f"{path.name} takes input {shape}, not {list(input_shape)}")
        import torch

        x = torch.from_numpy(fixed_input(shape))
        with quiet_stderr() as log:
            try:
                method = program.load_method("forward")
            except Exception as exc:  # noqa: BLE001 - the runtime's code; its log says why
                raise ProfilerError(self._refusal(path, exc, log)) from None
        return _EtRunner(program, method, [x])

    def _program(self, path: Path) -> tuple[Any, bytes]:
        data = path.read_bytes()
        delegation(data, path.name)  # not a program, another schema, truncated: one line
        with quiet_stderr() as log:
            try:
                return self._rt.load_program(data), data
            except Exception as exc:  # noqa: BLE001
                raise ProfilerError(self._refusal(path, exc, log)) from None

    @staticmethod
    def _refusal(path: Path, exc: BaseException, log: list[str]) -> str:
        why = log[-1].split("] ", 1)[-1] if log else " ".join(str(exc).split())
        return f"executorch cannot load {path.name}: {why[:200]}"

    def _in_precision(self, path: Path) -> Path:
        """``path``, or its bundle sibling in the table's precision; a program whose
        ``hwnas_precision`` differs from the table's is never measured in its place."""
        want = self.settings.precision
        if self._marked(path) in (want, None):
            return path
        other = precision_file(path, want)
        if other != path and other.is_file() and self._marked(other) in (want, None):
            return other
        raise ProfilerError(f"{path.name} is an {self._marked(path)} program and there is no "
                            f"{want} copy beside it ({other.name}); export the bundle with "
                            f"--precision {want}")

    def _marked(self, path: Path) -> "str | None":
        """The precision a hwnas program names; None for a program without the marker."""
        program, _ = self._program(path)
        if PRECISION_METHOD not in program.method_names:
            return None
        with quiet_stderr():
            value = program.load_method(PRECISION_METHOD).execute([])
        return str(value[0]) if value else None

    def _from_onnx(self, path: Path, input_shape: Sequence[int] | None) -> Path:
        """An ONNX graph lowered by :func:`lower` in the table's precision; cached."""
        prec = self.settings.precision
        tag, extra = f"et-{prec}", f"{input_shape}-{self.runtime()['version']}"
        out = _cached(path, tag, extra, suffix=".pte")
        if fresh(out, path, tag, extra):  # sealed by this converter from this very source
            return out
        try:
            import onnx
            import torch
        except ImportError as exc:
            raise self.missing("onnx", exc) from None
        from ..fileformat import atomic_path
        from .torch import compile_graph

        model = onnx.load(str(path))
        if input_shape is None:
            input_shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        fn = compile_graph(model, torch, onnx, "cpu", torch.float32)

        class _Graph(torch.nn.Module):
            def forward(self, x: Any) -> Any:
                y = fn(x)
                return y.clone() if y is x else y  # an identity may not alias its input

        x = torch.from_numpy(fixed_input(input_shape))
        try:
            with quiet_stderr():
                module: Any = _Graph().eval()
                if prec == "int8":
                    calib = [torch.from_numpy(calibration_input(input_shape, i))
                             for i in range(CALIBRATION_INPUTS)]
                    module = quantize_ptq(module, x, calib)
                data = lower(module, x, prec)
        except Exception as exc:  # noqa: BLE001 - the exporter's own error: this file fails
            raise ProfilerError(f"executorch cannot lower {path.name}: {exc.__class__.__name__}: "
                                f"{' '.join(str(exc).split())[:200]}") from None
        with atomic_path(out) as tmp:
            tmp.write_bytes(data)
        return seal(out, path, tag, extra)
