"""PyTorch eager: CPU, and CUDA timed with device events.

The device side never imports hwnas, so this backend cannot rebuild a block's
``nn.Module`` from its key. It runs the block's ONNX graph instead, node by node with
``torch.nn.functional`` (an eager interpreter for the ops hwnas blocks export to: Conv,
Clip, Relu, Sigmoid, HardSigmoid, HardSwish, Add, Mul, ReduceMean, GlobalAveragePool,
Gemm, MatMul, Flatten, Reshape, Identity, Constant). That is eager PyTorch execution, one
kernel per op, as the modules themselves would run; BatchNorm is already folded into the
convolutions by the export, as ``torch.fx`` fusion or ``torch.compile`` would do. A graph
with another op fails with a clear reason (recorded as a failed block, never as zero).
Reading ONNX needs the ``onnx`` package: ``pip install 'hwnas[torch]'``.

Precisions: fp32 (CPU, CUDA), fp16 on CUDA only; int8 is not a torch eager path here.

An AOTInductor package (``.pt2``, the ``torch-aoti`` engine hwnas emits) is loaded with
``torch._inductor.aoti_load_package`` and timed the same way: compiled code, not eager.
Loading is first tried in a child process: with torch 2.11.0+cu130 on an H200, loading any
CUDA package (a one-convolution model compiled in plain torch included) ended the process
with SIGSEGV inside ``load_pt2``; a crash must become a clear error, not a dead process.

An exported-program archive (``torch.export.save``, the ``torch-export`` engine) is loaded
with ``torch.export.load``; on CUDA it is captured once as a CUDA graph and each timed call
is one graph replay (the form a batch-1 GPU deployment runs), on CPU it runs as exported.

Modes (``Settings.mode``): ``eager`` (default), ``cuda-graph`` (each block captured once,
each timed call one replay) and ``aoti``: each block (and each calibration network) goes
through the ``torch-aoti`` engine's path, ``torch.export`` then
``torch._inductor.aoti_compile_and_package``, and the loaded package is timed, so the table
predicts what a ``torch-aoti`` engine runs (Inductor's fused kernels, not one kernel per
op). Packages are cached by the graph's content, device, precision and torch version:
compiling takes 10-60 s per block on 2 CPU cores, and a resumed or repeated profile
should not pay it twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..base import Profiler, ProfilerError, Runner
from ..fileformat import echo
from . import fixed_input


class _TorchRunner(Runner):
    def __init__(self, torch: Any, fn: Callable[[], Any], cuda: bool) -> None:
        import time

        self._t, self._fn, self._cuda, self._clock = torch, fn, cuda, time.perf_counter_ns
        if cuda:
            self._index = torch.cuda.current_device()  # the loader made it the settings' GPU
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def time_ms(self) -> float:
        if self._cuda:
            # the current GPU is per thread, and a fleet worker measures in a thread of
            # its own: name it before each call (outside the timed events)
            self._t.cuda.set_device(self._index)
            self._start.record()
            self._fn()
            self._end.record()
            self._end.synchronize()
            return float(self._start.elapsed_time(self._end))
        t0 = self._clock()
        self._fn()
        return (self._clock() - t0) / 1e6


def _attrs(node: Any, onnx: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def compile_graph(model: Any, torch: Any, onnx: Any, device: str, dtype: Any
                  ) -> Callable[[Any], Any]:
    """A function ``x -> output`` running ``model``'s nodes with torch ops."""
    from onnx import numpy_helper

    F = torch.nn.functional
    consts = {t.name: torch.as_tensor(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    steps: list[tuple[Callable[..., Any], list[str], str]] = []
    for node in model.graph.node:
        a = _attrs(node, onnx)
        op = node.op_type
        if op == "Constant":
            consts[node.output[0]] = torch.as_tensor(numpy_helper.to_array(a["value"]).copy())
            continue
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            if pads[:2] != pads[2:]:
                raise ProfilerError(f"torch backend: asymmetric Conv pads {pads}")
            fn = (lambda s, p, d, g: lambda x, w, b=None: F.conv2d(x, w, b, s, p, d, g))(
                tuple(a.get("strides", [1, 1])), tuple(pads[:2]), tuple(a.get("dilations", [1, 1])),
                a.get("group", 1))
        elif op == "Clip":
            fn = lambda x, lo=None, hi=None: torch.clamp(x, lo, hi)  # noqa: E731
        elif op in ("Relu", "Sigmoid", "Identity", "Add", "Mul", "MatMul"):
            fn = {"Relu": F.relu, "Sigmoid": torch.sigmoid, "Identity": lambda x: x,
                  "Add": torch.add, "Mul": torch.mul, "MatMul": torch.matmul}[op]
        elif op == "HardSwish":
            fn = F.hardswish
        elif op == "HardSigmoid":
            fn = (lambda al, be: lambda x: torch.clamp(al * x + be, 0, 1))(a.get("alpha", 0.2),
                                                                            a.get("beta", 0.5))
        elif op in ("ReduceMean", "GlobalAveragePool"):
            axes = tuple(a.get("axes", [2, 3])) if op == "ReduceMean" else (2, 3)
            keep = bool(a.get("keepdims", 1))
            fn = (lambda ax, k: lambda x, *_: x.mean(ax, keepdim=k))(axes, keep)
        elif op == "Flatten":
            fn = (lambda ax: lambda x: torch.flatten(x, ax))(a.get("axis", 1))
        elif op == "Reshape":
            fn = lambda x, s: x.reshape(tuple(int(v) for v in s.tolist()))  # noqa: E731
        elif op == "Gemm":
            if a.get("transA", 0):
                raise ProfilerError("torch backend: Gemm with transA")
            fn = (lambda al, be, tb: lambda x, w, c=None: F.linear(
                al * x, w if tb else w.t(), None if c is None else be * c))(
                a.get("alpha", 1.0), a.get("beta", 1.0), a.get("transB", 0))
        else:
            raise ProfilerError(f"torch backend: ONNX op {op} is not supported")
        steps.append((fn, list(node.input), node.output[0]))
    for k, v in consts.items():
        consts[k] = v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name

    def run(x: Any) -> Any:
        env = dict(consts)
        env[in_name] = x
        for fn, ins, out in steps:
            env[out] = fn(*[env[i] if i else None for i in ins])
        return env[out_name]

    return run


@dataclass
class TorchProfiler(Profiler):
    name = "torch"
    extra = "torch"
    model_suffixes = (".onnx", ".pt2")
    # eager: each call runs the graph's ops from Python (batch 1 on a GPU: bound by the host
    # launching kernels); cuda-graph: each block captured once, each timed call one replay,
    # as a CUDA-graph, TensorRT or AOTInductor deployment runs it
    # aoti: each block compiled as a torch-aoti engine (AOTInductor package) and its package timed
    modes = ("eager", "cuda-graph", "aoti")

    def check(self) -> None:
        try:
            import torch
        except ImportError as exc:
            raise self.missing("torch", exc) from None
        try:
            import onnx
        except ImportError as exc:
            raise self.missing("onnx", exc) from None
        self._torch, self._onnx = torch, onnx
        dev = self.settings.device_kind
        if dev not in self.device_precisions:
            raise ProfilerError(f"torch: unknown device {self.settings.device!r}; known: cpu, "
                                "cuda, cuda:N")
        if dev not in self.devices():
            raise self.unsupported("device cuda (torch.cuda.is_available() is False)")
        if dev == "cuda":
            n = torch.cuda.device_count()
            if self.settings.device_index >= n:
                raise self.unsupported(f"device {self.settings.device} (this machine has {n} "
                                       "CUDA device(s), numbered from 0)")
            torch.cuda.set_device(self.settings.device_index)  # "cuda" below is this one
        self.check_precision()
        if self.settings.mode == "cuda-graph" and dev != "cuda":
            raise self.unsupported("mode cuda-graph on the CPU (CUDA graphs need --device cuda)")
        if dev == "cpu":
            # measured at the table's count; close() gives the caller its own count back
            self._caller_threads = torch.get_num_threads()
            torch.set_num_threads(self.settings.n_threads)

    def close(self) -> None:
        n, self._caller_threads = getattr(self, "_caller_threads", None), None
        if n is not None and self._torch.get_num_threads() != n:
            self._torch.set_num_threads(n)

    def runtime(self) -> dict[str, str]:
        t = self._torch
        d = {"runtime": "torch", "version": t.__version__, "mode": self.settings.mode or "eager",
             "execution": {"cuda-graph": "CUDA graph replay of the ONNX graph run as torch ops",
                           "aoti": "AOTInductor package of the ONNX graph (torch.export, "
                                   "aoti_compile_and_package), as a torch-aoti engine runs"
                           }.get(self.settings.mode, "eager (ONNX graph interpreted op by op)")}
        if self.settings.device_kind == "cuda":
            d["cuda"] = str(t.version.cuda)
        return d

    def devices(self) -> list[str]:
        return ["cpu"] + (["cuda"] if self._torch.cuda.is_available() else [])

    def timer(self) -> str:
        return ("CUDA events around the call, then event synchronize"
                if self.settings.device_kind == "cuda"
                else super().timer())

    def load(self, onnx_path: Path, input_shape: Sequence[int] | None) -> Runner:
        path = Path(onnx_path)
        if not path.is_file():
            raise ProfilerError(f"model file {path} does not exist")
        torch, onnx = self._torch, self._onnx
        dev = self.settings.device_kind
        if dev == "cuda":  # "cuda" below is cuda:N (the current GPU is per thread)
            torch.cuda.set_device(self.settings.device_index)
        if path.suffix.lower() == ".pt2":
            return self._load_package(path, input_shape, dev)
        model = onnx.load(str(path))
        if input_shape is None:
            dims = model.graph.input[0].type.tensor_type.shape.dim
            input_shape = [d.dim_value for d in dims]
            if not all(input_shape):
                raise ProfilerError(f"{path} has a dynamic input shape; give one")
        dtype = torch.float16 if self.settings.precision == "fp16" else torch.float32
        if self.settings.mode == "aoti":
            # the first package per device is probed in a child process (see _AOTI_LOADS_HERE)
            probe = dev not in _AOTI_LOADS_HERE
            runner = self._load_package(self._aoti_package(path, model, input_shape, dtype),
                                        input_shape, dev, dtype, probe=probe)
            _AOTI_LOADS_HERE.add(dev)
            return runner
        fn = compile_graph(model, torch, onnx, dev, dtype)
        x = torch.as_tensor(fixed_input(input_shape)).to(device=dev, dtype=dtype)
        if self.settings.mode == "cuda-graph":
            graph, _ = cuda_graph(torch, fn, x)
            return _TorchRunner(torch, graph.replay, True)

        def call() -> Any:
            with torch.inference_mode():
                return fn(x)

        return _TorchRunner(torch, call, dev == "cuda")

    def _aoti_package(self, path: Path, model: Any, input_shape: Sequence[int], dtype: Any
                      ) -> Path:
        """The block ``path`` (its ONNX ``model``) as an AOTInductor package, from the cache
        when one was compiled for the same graph, shape, device, precision and torch."""
        torch, dev = self._torch, self.settings.device_kind
        if not hasattr(torch._inductor, "aoti_compile_and_package"):
            raise self.unsupported(f"mode aoti with torch {torch.__version__} (no "
                                   "torch._inductor.aoti_compile_and_package; torch >= 2.6)")
        from . import _cached
        from ..fileformat import atomic_path

        # Inductor's CPU kernels are generated for the compiling thread count (a package
        # compiled for 2 threads ran 3.0% slower at 1): compiled, and keyed, for this table's
        # thread count
        threads = f"-t{self.settings.n_threads}" if dev == "cpu" else ""
        key = (f"{dev}-{dtype}-{tuple(int(d) for d in input_shape)}{threads}"
               f"-torch{torch.__version__}")
        from ..trust import record_built

        pkg = _cached(path, "aoti", key, suffix=".pt2")
        if _compiled_here(pkg):
            return pkg
        fn = compile_graph(model, torch, self._onnx, dev, dtype)
        x = torch.as_tensor(fixed_input(input_shape)).to(device=dev, dtype=dtype)

        class _Graph(torch.nn.Module):
            def forward(self, inp: Any) -> Any:
                # a graph whose output is its input (the identity that measures the per-call
                # overhead) would alias it, which torch.export refuses: return a copy there
                out = fn(inp)
                return out.clone() if out is inp else out

        if dev == "cpu":
            torch.set_num_threads(self.settings.n_threads)
        try:
            with torch.no_grad():
                ep = torch.export.export(_Graph().eval(), (x,))
            # AOTInductor names the package by its suffix: the temporary file ends in .pt2 too
            with atomic_path(pkg) as tmp:
                tmp_pt2 = tmp.with_name(tmp.name + ".pt2")
                try:
                    torch._inductor.aoti_compile_and_package(ep, package_path=str(tmp_pt2))
                    tmp_pt2.replace(tmp)
                finally:
                    tmp_pt2.unlink(missing_ok=True)
        except ProfilerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the compiler's own error: this block fails
            raise ProfilerError(f"AOTInductor cannot compile {path.name}: "
                                f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:200]}") from None
        record_built(pkg)
        return pkg

    def _load_package(self, path: Path, input_shape: Sequence[int] | None, dev: str,
                      dtype: Any = None, probe: bool = True) -> Runner:
        torch = self._torch
        if input_shape is None:
            raise ProfilerError(f"{path.name}: a .pt2 engine needs its input shape "
                                "(hwnas engines record it in manifest.json)")
        from ..trust import private_copy, require_trusted

        # what is checked is what is loaded: a private copy, hashed as it is read
        with private_copy(path) as (copy, digest):
            if pt2_kind(copy) == "export":
                check_export_archive(copy, torch)  # nothing of it is unpickled
                return self._load_exported(copy, input_shape, dev)
            require_trusted(path, digest)  # dlopen runs the package's code: hwnas's own only
            if probe:
                probe_aoti_load(copy)
            try:
                fn = torch._inductor.aoti_load_package(str(copy))
            except Exception as exc:  # noqa: BLE001 - the runtime's own error: not a package here
                raise ProfilerError(f"torch cannot load the AOTInductor package {path.name}: "
                                    f"{exc.__class__.__name__}: "
                                    f"{' '.join(str(exc).split())[:200]}") from None
        # engines take fp32 input whatever their precision (the cast is inside the package);
        # a block compiled in mode aoti takes its own precision (``dtype``)
        x = torch.as_tensor(fixed_input(input_shape)).to(device=dev, dtype=dtype or torch.float32)

        def call() -> Any:
            with torch.inference_mode():
                return fn(x)

        return _TorchRunner(torch, call, dev == "cuda")

    def _load_exported(self, path: Path, input_shape: Sequence[int], dev: str) -> Runner:
        torch = self._torch
        try:
            mod = torch.export.load(str(path)).module().to(dev)
        except Exception as exc:  # noqa: BLE001
            raise ProfilerError(f"torch cannot load the exported program {path.name}: "
                                f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:200]}") from None
        x = torch.as_tensor(fixed_input(input_shape)).to(device=dev)
        if dev != "cuda":
            def call() -> Any:
                with torch.inference_mode():
                    return mod(x)

            return _TorchRunner(torch, call, False)
        graph, _ = cuda_graph(torch, mod, x)
        return _TorchRunner(torch, graph.replay, True)


def _compiled_here(pkg: Path) -> bool:
    """A cached package hwnas compiled (its sha256 recorded): reused; a foreign or corrupt
    entry is compiled anew."""
    from ..cachedir import sha256_file
    from ..trust import built_here

    return pkg.is_file() and not pkg.is_symlink() and built_here(sha256_file(pkg))


def cuda_graph(torch: Any, mod: Any, x: Any) -> tuple[Any, Any]:
    """``mod(x)`` captured as a CUDA graph (static input ``x``, after warm-up on a side
    stream); returns the graph and its static output tensor."""
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(s):
            for _ in range(3):
                mod(x)
        torch.cuda.current_stream().wait_stream(s)
        with torch.cuda.graph(g):
            out = mod(x)
    return g, out


# Devices on which a package compiled by this process's torch loaded in a child process.
# The crash seen (torch 2.11 on an H200) hit every CUDA package alike, so in mode aoti the
# first block's package is probed and the rest are not: a child process costs 3-4 s (the
# torch import), and a table has 50-90 packages. Engine files (made elsewhere) are always
# probed.
_AOTI_LOADS_HERE: set[str] = set()


def pt2_kind(path: Path) -> str:
    """``aoti`` for an AOTInductor package, ``export`` for a torch.export archive."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ProfilerError(f"{path.name} is not a .pt2 archive ({exc})") from None
    if any("/aotinductor/" in n or n.endswith(".so") for n in names):
        return "aoti"
    return "export"


# every member a torch.export archive of a plain network holds (after its top folder);
# anything else (legacy pickled state dicts, custom or opaque objects, compiled code) is
# refused before torch sees the file
_EXPORT_MEMBERS = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/[\w.-]+\.json|data/weights/[\w.-]+_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/[\w.-]+_constants_config\.json|data/constants/tensor_\d+"
    r"|data/sample_inputs/[\w.-]+\.pt|extra/[\w.-]+)")
_MAX_CONFIG_BYTES = 16 * 2**20


def _archive_members(z: Any, path: Path) -> dict[str, Any]:
    """The archive's members by name without its top folder; one line on anything odd."""
    infos = z.infolist()
    if not infos:
        raise ProfilerError(f"{path.name} is an empty archive")
    top = infos[0].filename.split("/", 1)[0] + "/"
    members: dict[str, Any] = {}
    for info in infos:
        name = info.filename
        if not name.startswith(top) or name[len(top):] in members:
            raise ProfilerError(f"{path.name}: member {echo(name)} is outside the archive's "
                                "one top folder or repeated; not a torch.export archive")
        rest = name[len(top):]
        if not _EXPORT_MEMBERS.fullmatch(rest):
            raise ProfilerError(f"{path.name} holds {echo(rest)}, which is not part of a plain "
                                "torch.export archive (pickled objects or compiled code); "
                                "hwnas does not load it")
        members[rest] = info
    return members


def _payload_config(z: Any, info: Any, path: Path, constants: bool) -> None:
    import json

    if info.file_size > _MAX_CONFIG_BYTES:
        raise ProfilerError(f"{path.name}: {info.filename} is over 16 MiB")
    try:
        d = json.loads(z.read(info).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProfilerError(f"{path.name}: {info.filename} is not JSON") from None
    entries = d.get("config") if isinstance(d, dict) else None
    if not isinstance(entries, dict):
        raise ProfilerError(f"{path.name}: {info.filename} has no config mapping")
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise ProfilerError(f"{path.name} stores {echo(fqn)} pickled (use_pickle), and "
                                "unpickling runs code: hwnas never unpickles a file it is "
                                "handed; save the program with torch.export.save")
        name = meta.get("path_name")
        if constants and not (isinstance(name, str) and name.startswith("tensor_")):
            raise ProfilerError(f"{path.name}: constant {echo(fqn)} is not a tensor "
                                f"({echo(name)}); hwnas does not load custom objects")


def check_export_archive(path: Path, torch: Any) -> None:
    """Refuse a torch.export archive that would make ``torch.export.load`` unpickle
    (weights or constants stored with pickle, custom objects, legacy state dicts) or load
    compiled code; the sample inputs, which torch reads with a fallback to full unpickling,
    must load with ``weights_only=True`` here first."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            members = _archive_members(z, path)
            if members.get("archive_format") is None or \
                    z.read(members["archive_format"]) != b"pt2":
                raise ProfilerError(f"{path.name} is not a torch.export archive (no "
                                    "archive_format pt2)")
            for rest, info in members.items():
                if rest.endswith(("_weights_config.json", "_constants_config.json")):
                    _payload_config(z, info, path, rest.startswith("data/constants/"))
            models = [r[len("models/"):-len(".json")] for r in members if r.startswith("models/")]
            for m in models:
                for need in (f"data/weights/{m}_weights_config.json",
                             f"data/constants/{m}_constants_config.json"):
                    if need not in members:
                        raise ProfilerError(f"{path.name} has no {need}; not an archive "
                                            "hwnas can check, so it is not loaded")
                sample = members.get(f"data/sample_inputs/{m}.pt")
                if sample is not None:
                    try:
                        torch.load(io.BytesIO(z.read(sample)), weights_only=True)
                    except Exception:  # noqa: BLE001 - torch would unpickle it in full
                        raise ProfilerError(f"{path.name}: its sample inputs are not plain "
                                            "tensors; hwnas never unpickles them") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ProfilerError(f"{path.name} is not a .pt2 archive ({exc})") from None


def probe_aoti_load(path: Path, timeout_s: float = 300.0) -> None:
    """Load the package once in a child process; a crash there is a clear error here."""
    import subprocess
    import sys

    code = "import sys, torch; torch._inductor.aoti_load_package(sys.argv[1])"
    try:
        p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                           text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ProfilerError(f"loading the AOTInductor package {path.name} took over "
                            f"{timeout_s:.0f} s in a child process") from None
    if p.returncode != 0:
        import torch

        why = (f"killed by signal {-p.returncode}" if p.returncode < 0 else
               (p.stderr.strip().splitlines() or ["exit " + str(p.returncode)])[-1][:200])
        raise ProfilerError(f"torch {torch.__version__} cannot load the AOTInductor package "
                            f"{path.name} ({why}); seen with torch 2.11.0+cu130 on H200 for "
                            "every CUDA package: use the torch-export engine instead")
