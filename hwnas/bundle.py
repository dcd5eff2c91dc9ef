"""Block bundles: one ONNX file per unique block of a space, plus a manifest.

The bundle is what a device-side profiling run reads (``hwnas-profilers profile DIR``),
so the manifest is self-sufficient: the ``hwnas_profilers`` package never imports hwnas or torch.
It may also hold a few whole networks of the space, measured end to end on the device to
calibrate the additive latency model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hwnas_profilers.base import Progress
from hwnas_profilers.fileformat import KINDS

from .arch import Architecture, sample_architecture
from .blocks import Block
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
                  precisions: tuple[str, ...] = ("fp32",),
                  workers: int | None = None) -> dict[str, Any]:
    """Write ``blocks/<key>.onnx`` for every unique block and ``manifest.json``; with
    another ``fmt`` (:data:`FORMATS`), that runtime's files in each of ``precisions``,
    converted by ``workers`` processes (:func:`conversion_workers`).

    Files already present are kept (a re-run only adds what is missing).
    """
    if fmt != "onnx":
        format_writer(fmt)  # a missing converter: one line, before anything is written
        return _export_converted(space, Path(out_dir), calibration_nets, seed, progress,
                                 batch, fmt, tuple(precisions), workers)
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
                      progress: Progress | None, batch: int, fmt: str,
                      precisions: tuple[str, ...], workers: int | None) -> dict[str, Any]:
    """:func:`export_bundle` for a format converted on the host (one file per precision),
    the files converted by :func:`convert_all`."""
    blocks = space.unique_blocks()
    fixed = {b.key() for b in space.fixed_blocks()}
    archs = [sample_architecture(space, seed=seed * 1000 + j) for j in range(calibration_nets)]
    shape = (batch, space.input[2], space.input[0], space.input[1])
    jobs = [Conversion(space, f"blocks/{b.key()}", (batch, b.cin, b.h, b.w), seed, block=b)
            for b in blocks]
    jobs += [Conversion(space, f"networks/net{j:03d}", shape, seed, arch=a)
             for j, a in enumerate(archs)]
    files = convert_all(fmt, jobs, out, precisions, progress, workers)
    entries = [{"key": b.key(), "file": f[precisions[0]], "files": f,
                "input_shape": list(j.input_shape),
                "role": "fixed" if b.key() in fixed else "candidate"}
               for b, j, f in zip(blocks, jobs, files)]
    nets = [{"name": f"net{j:03d}", "file": f[precisions[0]], "files": f,
             "choices": list(a.choices), "blocks": [b.key() for b in a.blocks(space)],
             "input_shape": list(shape)}
            for j, (a, f) in enumerate(zip(archs, files[len(blocks):]))]
    manifest = {"schema": BUNDLE_SCHEMA, "kind": BUNDLE_KIND, "space": space.name,
                "space_id": space.id, "format": fmt, "precisions": list(precisions),
                "input_layout": getattr(format_writer(fmt), "INPUT_LAYOUT", "NCHW"),
                "blocks": entries, "networks": nets}
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def precision_files(make_module: Callable[[], Any], out: Path, name: Callable[[str], Path],
                    write: Callable[[Any, Path, str], object],
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


#: how many processes convert a bundle's files; unset: one per core, at most one per module
#: to convert and no more than memory holds; 1: one after the other in this process
WORKERS_ENV = "HWNAS_CONVERT_WORKERS"
MAX_WORKERS = 256
# one converting process (torch, a converter, one module) measured at 0.4-0.7 GB; with room
_WORKER_BYTES = 1 << 30


@dataclass(frozen=True)
class Conversion:
    """One module's bundle files to write, described by values so that a worker process
    builds the module itself: a block of ``space`` (fresh weights from ``seed``), or a
    network of it (``arch``)."""

    space: SearchSpace
    stem: str                        # the files' path in the bundle, less the suffix
    input_shape: tuple[int, ...]
    seed: int = 0
    block: Block | None = None
    arch: Architecture | None = None

    def module(self) -> Any:
        if self.block is not None:
            from .nn.export import block_module

            return block_module(self.block, self.seed)
        from .nn.subnet import build_subnet

        if self.arch is None:
            raise ValueError(f"conversion {self.stem} names neither a block nor a network")
        return build_subnet(self.space, self.arch, self.seed).eval()


def conversion_workers(todo: int, workers: int | None = None) -> int:
    """How many processes convert ``todo`` modules: ``workers``, else ``$HWNAS_CONVERT_WORKERS``,
    else one per core this process may use and per GiB of memory available now; never more
    than ``todo``. A bad count is one line."""
    from hwnas_profilers.bounds import available_bytes, cores

    from .errors import UserError

    if workers is None and os.environ.get(WORKERS_ENV, "").strip():
        raw = os.environ[WORKERS_ENV].strip()
        workers = int(raw) if raw.isdigit() else -1
        if not 1 <= workers <= MAX_WORKERS:
            from hwnas_profilers.fileformat import echo

            raise UserError(f"environment variable {WORKERS_ENV}={echo(raw)} must be a process "
                            f"count from 1 to {MAX_WORKERS}; fix or unset it")
    elif workers is None:
        workers = min(cores(), max(1, available_bytes() // _WORKER_BYTES))
    elif isinstance(workers, bool) or not isinstance(workers, int) or \
            not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"conversion workers must be 1 to {MAX_WORKERS}, got {workers!r}")
    return max(1, min(workers, todo))


def convert_all(fmt: str, jobs: Sequence[Conversion], out: Path, precisions: Sequence[str],
                progress: Progress | None = None, workers: int | None = None,
                stage: str = "exporting") -> list[dict[str, str]]:
    """Each job's files under ``out`` in each of ``precisions`` ({precision: file relative
    to ``out``}, in the order of ``jobs``), written by the bundle writer of ``fmt``; present
    files are kept. The missing ones are converted by :func:`conversion_workers` processes
    (one: in this process, one after the other), each file written atomically. When one
    conversion fails, no new one starts, those under way finish, and the failure of the
    first failed job (in the order of ``jobs``) is raised: what was converted is kept.

    The processes are started by 'spawn', which imports the caller's main module anew: a
    script calling this needs the ``if __name__ == "__main__":`` guard. When a process dies
    (killed, out of memory, or a script without the guard), what is left is converted here,
    one after the other."""
    writer = format_writer(fmt)
    files = [{p: writer.bundle_file(j.stem, p) for p in precisions} for j in jobs]
    tick = progress or (lambda stage, done, total: None)
    todo = _missing(jobs, files, out)
    if len(todo) < len(jobs):
        tick(stage, len(jobs) - len(todo), len(jobs))
    n = conversion_workers(len(todo), workers) if todo else 1
    if n > 1:
        done = len(jobs) - len(todo)
        if _in_pool(fmt, [jobs[i] for i in todo], out, tuple(precisions), n,
                    lambda k: tick(stage, done + k, len(jobs))):
            return files
        todo = _missing(jobs, files, out)  # a process died: the rest in this one
    for k, i in enumerate(todo):
        j = jobs[i]
        writer.write_bundle_files(j.module, list(j.input_shape), out, j.stem, precisions)
        tick(stage, len(jobs) - len(todo) + k + 1, len(jobs))
    return files


def _missing(jobs: Sequence[Conversion], files: Sequence[dict[str, str]], out: Path
             ) -> list[int]:
    """The jobs with a file to write (a module named twice: its first job only)."""
    todo, seen = [], set()
    for i, j in enumerate(jobs):
        if j.stem not in seen and not all((out / f).is_file() for f in files[i].values()):
            todo.append(i)
        seen.add(j.stem)
    return todo


def _in_pool(fmt: str, jobs: Sequence[Conversion], out: Path, precisions: tuple[str, ...],
             n: int, tick: Callable[[int], None]) -> bool:
    """``jobs`` converted by ``n`` fresh processes ('spawn': no copy of this process's
    threads or torch state), each limited to one torch thread; ``tick(finished)``. False
    when a process died; a conversion's own failure is raised (the first job's of those
    that failed)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_one_thread)
    try:
        futures = {pool.submit(_convert, fmt, j, str(out), precisions): i
                   for i, j in enumerate(jobs)}
        pending, finished, failed = set(futures), 0, False
        while pending and not failed:
            over, pending = wait(pending, return_when=FIRST_COMPLETED)
            failed = any(f.exception() is not None for f in over)
            finished += sum(f.exception() is None for f in over)
            tick(finished)
        for f in pending:
            f.cancel()  # not started: left for a rerun; under way: finishes
        wait(pending)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    errors = {futures[f]: f.exception() for f in futures
              if not f.cancelled() and f.exception() is not None}
    if any(isinstance(e, BrokenProcessPool) for e in errors.values()):
        return False
    if errors:
        raise errors[min(errors)]  # type: ignore[misc]
    return True


def _one_thread() -> None:
    """A conversion process's start: one torch thread (the processes are the parallelism)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _convert(fmt: str, job: Conversion, out: str, precisions: tuple[str, ...]
             ) -> dict[str, str]:
    """One job in a worker process (:func:`convert_all`)."""
    return format_writer(fmt).write_bundle_files(job.module, list(job.input_shape), Path(out),
                                                 job.stem, precisions)
