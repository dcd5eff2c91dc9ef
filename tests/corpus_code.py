"""Hostile-input cases for the surfaces that run code or reach outside a folder: model and
engine files handed to ``measure`` (pickles and shared libraries inside ``.pt2``), the
cache, engine manifests and run files read back, image folders, the environment, numeric
bounds, and symbolic links or ``..`` paths out of an output folder.

Every payload here, if it ever ran, would create ``CANARY`` in its case folder: the test
(``tests/test_corpus.py``) and ``benchmarks/fault_corpus.py`` check that no canary
appeared and that no file outside the command's output changed.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Callable

CANARY = "CANARY"
SHAPE = "1,3,8,8"


_MAKING = threading.Lock()


def _once(fn: Callable[[], bytes]) -> Callable[[], bytes]:
    """``fn``'s bytes made once per process, one maker at a time (torch.export is not
    thread-safe, and the benchmark prepares cases from several threads)."""
    cached = functools.lru_cache(maxsize=1)(fn)

    @functools.wraps(fn)
    def made() -> bytes:
        with _MAKING:
            return cached()
    return made


def _case():
    from corpus import Case  # the one case type (corpus imports this module lazily)

    return Case


# ------------------------------------------------------------- payloads
class _Canary:
    """Unpickling this creates the canary file: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickled(canary: Path) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(_Canary(str(canary)), buf)
    return buf.getvalue()


@_once
def _export_archive() -> bytes:
    """A clean torch.export archive of a one-convolution network (made once)."""
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    ep = torch.export.export(net, (torch.zeros(1, 3, 8, 8),))
    with tempfile.TemporaryDirectory() as tmp:
        torch.export.save(ep, str(Path(tmp) / "model.pt2"))
        return (Path(tmp) / "model.pt2").read_bytes()


def _rewrite(edit: Callable[[str, bytes, Path], "bytes | None"], extra: dict | None = None
             ) -> Callable[[Path], bytes]:
    """An archive made from the clean one: ``edit(name, data, case_dir)`` changes a member
    (None drops it); ``extra`` adds members (name -> callable(case_dir) -> bytes)."""
    def make(d: Path) -> bytes:
        src = zipfile.ZipFile(io.BytesIO(_export_archive()))
        top = src.namelist()[0].split("/", 1)[0]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for info in src.infolist():
                rest = info.filename[len(top) + 1:]
                data = edit(rest, src.read(info), d)
                if data is not None:
                    z.writestr(info.filename, data)
            for rest, fn in (extra or {}).items():
                z.writestr(f"{top}/{rest}" if not rest.startswith("/") else rest[1:], fn(d))
        return buf.getvalue()
    return make


def _config_edit(which: str, fqn_edit: Callable[[dict], None], payload_name: str | None = None
                 ) -> Callable[[str, bytes, Path], "bytes | None"]:
    def edit(rest: str, data: bytes, d: Path) -> "bytes | None":
        if rest == f"data/{which}/model_{which}_config.json":
            cfg = json.loads(data)
            fqn_edit(cfg["config"])
            return json.dumps(cfg).encode()
        if payload_name and rest == f"data/{which}/{payload_name}":
            return _pickled(d / CANARY)
        return data
    return edit


def _pickled_weight(cfg: dict) -> None:
    next(iter(cfg.values()))["use_pickle"] = True


def _constant(path_name: str, use_pickle: bool) -> Callable[[dict], None]:
    def put(cfg: dict) -> None:
        cfg["c"] = {"path_name": path_name, "is_param": False, "use_pickle": use_pickle,
                    "tensor_meta": None}
    return put


def _so_bytes(d: Path) -> bytes:
    """A shared library whose constructor creates the canary (gcc when present; else
    bytes that only claim to be one)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return b"\x7fELF not a real library"
    src = d / ".payload.c"
    lib = d / ".payload.so"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void f(void) '
                   f'{{ FILE *fh = fopen("{d / CANARY}", "w"); if (fh) fclose(fh); }}\n')
    try:
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True,
                       capture_output=True, timeout=60)
        return lib.read_bytes()
    except (OSError, subprocess.SubprocessError):
        return b"\x7fELF not a real library"
    finally:
        src.unlink(missing_ok=True)
        lib.unlink(missing_ok=True)


def _aoti_package(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/archive_format", "pt2")
        z.writestr("model/archive_version", "0")
        z.writestr("model/data/aotinductor/model/model.wrapper.so", _so_bytes(d))
        z.writestr("model/data/aotinductor/model/model.wrapper_metadata.json", "{}")
    return buf.getvalue()


def _legacy_archive(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("version", "8.0")
        z.writestr("serialized_exported_program.json", "{}")
        z.writestr("serialized_state_dict.pt", _pickled(d / CANARY))
        z.writestr("serialized_constants.pt", _pickled(d / CANARY))
    return buf.getvalue()


def _pt2_payloads() -> dict[str, Callable[[Path], bytes]]:
    edit = _config_edit
    return {
        "pickled-weight": _rewrite(edit("weights", _pickled_weight, "weight_0")),
        "pickled-tensor-constant": _rewrite(
            edit("constants", _constant("tensor_0", True)),
            {"data/constants/tensor_0": lambda d: _pickled(d / CANARY)}),
        "custom-object-constant": _rewrite(
            edit("constants", _constant("custom_obj_0", False)),
            {"data/constants/custom_obj_0": lambda d: _pickled(d / CANARY)}),
        "opaque-object-constant": _rewrite(
            edit("constants", _constant("opaque_obj_0", False)),
            {"data/constants/opaque_obj_0": lambda d: _pickled(d / CANARY)}),
        "legacy-pickled-weights-file": _rewrite(
            lambda r, data, d: None if r.endswith("_weights_config.json") else data,
            {"data/weights/model.pt": lambda d: _pickled(d / CANARY)}),
        "sample-inputs-pickle": _rewrite(
            lambda r, data, d: _pickled(d / CANARY) if r.startswith("data/sample_inputs/")
            else data),
        "legacy-format": _legacy_archive,
        "extra-executorch-member": _rewrite(lambda r, data, d: data,
                                            {"data/executorch/model.pte": lambda d: b"x"}),
        "second-top-folder": _rewrite(lambda r, data, d: data,
                                      {"/other/version": lambda d: b"8.0"}),
        "aoti-package-not-built-here": _aoti_package,
        "not-a-zip": lambda d: b"PK\x03\x04 not really a zip" * 10,
        "empty-file": lambda d: b"",
    }


def _engine_manifest(file: str, sha: "str | None", **engine) -> dict:
    eng = {"backend": "onnxruntime", "precision": "fp32", "device": "cpu", "file": file,
           "files": [file], "input_shape": [1, 16, 32, 32], **engine}
    if sha is not None:
        eng["sha256"] = {file: sha}
    return {"kind": "hwnas.engine_manifest", "schema": 2, "architecture": {"choices": []},
            "engine": eng, "latency": {}}


def _code_cases() -> list:
    Case = _case()
    cases = []
    for name, make in _pt2_payloads().items():
        def setup(d: Path, make=make) -> None:
            (d / "model.pt2").write_bytes(make(d))

        cases.append(Case("code-file", f"{name}@measure",
                          ["measure", "{d}/model.pt2", "--shape", SHAPE, "--quick"], setup=setup))
        cases.append(Case("code-file", f"{name}@profilers-measure",
                          ["measure", "{d}/model.pt2", "--backend", "torch", "--shape", SHAPE,
                           "--iterations", "5"], setup=setup, tool="hwnas-profilers"))

    def with_manifest(d: Path) -> None:
        """An AOTInductor package beside a manifest that records its true sha256: written
        by whoever made the folder, not by hwnas, so it vouches for nothing."""
        from hwnas_profilers.cachedir import sha256_file

        (d / "eng").mkdir()
        (d / "eng" / "model.pt2").write_bytes(_aoti_package(d))
        m = _engine_manifest("model.pt2", sha256_file(d / "eng" / "model.pt2"),
                             backend="torch-aoti", input_shape=[1, 3, 8, 8])
        (d / "eng" / "manifest.json").write_text(json.dumps(m))

    cases.append(Case("code-file", "aoti-package-with-its-own-manifest@measure",
                      ["measure", "{d}/eng/model.pt2", "--quick"], setup=with_manifest))
    return cases


# ------------------------------------------------------------------ cache
def _reference_onnx(d: Path) -> None:
    from hwnas_profilers.onnxgraph import write_reference_model

    write_reference_model(d / "m.onnx")


def _cache_cases() -> list:
    Case = _case()

    def mode(m: int) -> Callable[[Path], None]:
        def setup(d: Path) -> None:
            _reference_onnx(d)
            (d / "cache").mkdir()
            os.chmod(d / "cache", m)
        return setup

    def foreign(d: Path) -> None:
        _reference_onnx(d)
        (d / "cache").mkdir()
        try:  # root can hand it to nobody; anyone else shows the same risk by its mode
            os.chown(d / "cache", 65534, -1)
        except (PermissionError, AttributeError):
            os.chmod(d / "cache", 0o777)

    def a_file(d: Path) -> None:
        _reference_onnx(d)
        (d / "cache").write_text("precious\n")

    setups = {"world-writable": (mode(0o777), "{d}/cache"),
              "group-writable": (mode(0o770), "{d}/cache"),
              "owned-by-another-user": (foreign, "{d}/cache"),
              "a-file": (a_file, "{d}/cache"),
              "under-dev-null": (_reference_onnx, "/dev/null/hwnas-cache")}
    cases = []
    for name, (setup, root) in setups.items():
        env = {"HWNAS_CACHE": root}
        cases.append(Case("cache", f"{name}@measure", ["measure", "{d}/m.onnx", "--backend",
                                                       "onnxruntime", "--quick"],
                          setup=setup, env=env))
        cases.append(Case("cache", f"{name}@profilers-measure",
                          ["measure", "{d}/m.onnx", "--backend", "onnxruntime", "--quick"],
                          setup=setup, env=env, tool="hwnas-profilers"))
    return cases


# ------------------------------------------------- engine manifests on measure
def _manifest_cases() -> list:
    Case = _case()

    def engine(mutate: Callable[[dict, str, Path], None]) -> Callable[[Path], None]:
        def setup(d: Path) -> None:
            from hwnas_profilers.cachedir import sha256_file
            from hwnas_profilers.onnxgraph import write_reference_model

            (d / "eng").mkdir()
            write_reference_model(d / "eng" / "model.onnx")
            m = _engine_manifest("model.onnx", sha256_file(d / "eng" / "model.onnx"))
            mutate(m, m["engine"]["sha256"]["model.onnx"], d)
            (d / "eng" / "manifest.json").write_text(json.dumps(m))
        return setup

    def eng(key, value):
        return lambda m, sha, d: m["engine"].__setitem__(key, value)

    def link_out(m: dict, sha: str, d: Path) -> None:
        """model.onnx is a link to a model outside the engine folder (same bytes)."""
        (d / "outside").mkdir()
        (d / "eng" / "model.onnx").replace(d / "outside" / "other.onnx")
        (d / "eng" / "model.onnx").symlink_to(d / "outside" / "other.onnx")

    muts = {
        "sha256-mismatch": lambda m, sha, d: m["engine"]["sha256"].__setitem__(
            "model.onnx", "0" * 64),
        "sha256-missing": lambda m, sha, d: m["engine"].pop("sha256"),
        "sha256-not-hex": lambda m, sha, d: m["engine"]["sha256"].__setitem__("model.onnx", "x"),
        "shape-string": eng("input_shape", "a"),
        "shape-nested": eng("input_shape", [[1, 16], [32, 32]]),
        "shape-three": eng("input_shape", [16, 32, 32]),
        "shape-2TiB": eng("input_shape", [65536, 65536, 128, 1]),
        "backend-list": eng("backend", ["onnxruntime"]),
        "backend-unknown": eng("backend", "onnx-9"),
        "engine-list": lambda m, sha, d: m.__setitem__("engine", []),
        "schema-99": lambda m, sha, d: m.__setitem__("schema", 99),
        "precision-int4": eng("precision", "int4"),
        "extra-file-outside": lambda m, sha, d: m["engine"]["sha256"].__setitem__(
            "../secret.txt", sha),
        "file-links-out-of-folder": link_out,
    }
    return [Case("engine-manifest", name, ["measure", "{d}/eng/model.onnx", "--quick"],
                 setup=engine(mut)) for name, mut in muts.items()]


# ------------------------------------------------------ run files on redraw
def _run_folder(d: Path, summary: "dict | str | None" = None,
                baselines: "dict | str | None" = None) -> Path:
    """A finished run folder's files (no engines), for ``hwnas report``."""
    from corpus import DEVICE, _acc_base

    from hwnas.solver import frontier
    from hwnas.tables.accuracy import load_accuracy_table
    from hwnas.tables.device import load_device_table

    run = d / "run"
    (run / "train").mkdir(parents=True)
    (run / "train" / "accuracy_table.json").write_text(json.dumps(_acc_base()))
    acc = load_accuracy_table(run / "train" / "accuracy_table.json", "tiny-32")
    frontier(acc, load_device_table(DEVICE, check_machine=False)).save(
        run / "frontier_onnxruntime_fp32.json")
    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    base = {"space": sp.name, "space_id": sp.id, "data": "digits",
            "device_table": str(DEVICE), "results": []}
    text = summary if isinstance(summary, str) else json.dumps({**base, **(summary or {})})
    (run / "summary_onnxruntime_fp32.json").write_text(text)
    if baselines is not None:
        (run / "baselines_onnxruntime_fp32.json").write_text(
            baselines if isinstance(baselines, str) else json.dumps(baselines))
    return run


def _baselines(**over) -> dict:
    d = {"kind": "hwnas.baselines", "schema": 1, "statistic": "floor",
         "score_to_accuracy": {"slope": 1.0, "intercept": 0.0, "fitted_on": 2,
                               "rms_residual": 0.0},
         "networks": []}
    for k, v in over.items():
        d[k] = v
    return {k: v for k, v in d.items() if v is not None}


def _run_file_cases() -> list:
    Case = _case()

    def outside_report(d: Path) -> None:
        run = _run_folder(d)
        (d / "outside").mkdir()
        (run / "report_onnxruntime_fp32").symlink_to(d / "outside")

    setups: dict[str, Callable[[Path], object]] = {
        "summary-empty": lambda d: _run_folder(d, ""),
        "summary-truncated": lambda d: _run_folder(d, '{"space": "tiny-32", "resu'),
        "summary-list": lambda d: _run_folder(d, "[]"),
        "summary-no-space-id": lambda d: _run_folder(d, json.dumps({"results": []})),
        "summary-space-id-int": lambda d: _run_folder(d, {"space_id": 5}),
        "summary-results-strings": lambda d: _run_folder(d, {"results": ["a", "b"]}),
        "summary-budget-string": lambda d: _run_folder(
            d, {"results": [{"budget_ms": "fast", "choices": []}]}),
        "summary-choices-nested": lambda d: _run_folder(
            d, {"results": [{"budget_ms": 1, "choices": [[1]]}]}),
        "baselines-number-as-string": lambda d: _run_folder(
            d, None, _baselines(score_to_accuracy={"slope": "1", "intercept": 0,
                                                   "fitted_on": 1, "rms_residual": 0})),
        "baselines-without-score-to-accuracy": lambda d: _run_folder(
            d, None, _baselines(score_to_accuracy=None)),
        "baselines-network-without-choices": lambda d: _run_folder(
            d, None, _baselines(networks=[{"label": "x", "kind": "baseline"}])),
        "baselines-empty": lambda d: _run_folder(d, None, ""),
        "report-folder-links-outside": outside_report,
    }
    cases = [Case("run-file", name, ["report", "{d}/run"], setup=setup)
             for name, setup in setups.items()]
    cases.append(Case("run-file", "backend-name-leads-out", [
        "report", "{d}/run", "--backend", "../../outside"], setup=lambda d: _run_folder(d)))
    return cases


# ------------------------------------------------------------ image folders
def _png(width: int, height: int) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` black pixels, compressed as it is built
    (a 12000 x 12000 image is 0.4 MB on disk, 432 MB decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    comp, row, parts = zlib.compressobj(9), bytes(1 + 3 * width), []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


@_once
def _bomb() -> bytes:
    return _png(12000, 12000)


def _image_cases() -> list:
    Case = _case()
    pgm = "P5\n8 8\n255\n".encode() + bytes(64)
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
           b"newpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n")
    tiff = b"II*\x00\x08\x00\x00\x00" + bytes(64)
    folders: dict[str, Callable[[], dict[str, bytes]]] = {
        "png-12000x12000": lambda: {"a/1.png": _bomb(), "b/1.pgm": pgm},
        "eps-named-png": lambda: {"a/1.png": eps, "b/1.pgm": pgm},
        "eps-named-jpg": lambda: {"a/1.jpg": eps, "b/1.pgm": pgm},
        "tiff-named-png": lambda: {"a/1.png": tiff, "b/1.pgm": pgm},
        "png-named-pgm": lambda: {"a/1.pgm": _png(8, 8), "b/1.pgm": pgm},
    }
    cases = []
    for name, files in folders.items():
        def setup(d: Path, files=files) -> None:
            for rel, data in files().items():
                (d / "imgs" / rel).parent.mkdir(parents=True, exist_ok=True)
                (d / "imgs" / rel).write_bytes(data)

        cases.append(Case("image-folder", name, ["train", "--space", "tiny-32", "--data",
                                                 "{d}/imgs", "--out", "{d}/run", "--epochs", "1"],
                          setup=setup))
    return cases


# ------------------------------------------------------------- environment
def _environment_cases() -> list:
    from corpus import ARCH, DEVICE

    Case = _case()
    predict = ["predict", ARCH, "--table", str(DEVICE)]
    env = {"nncf-timeout-text": {"NNCF_EXTENSION_LOAD_TIMEOUT": "abc"},
           "nncf-timeout-negative": {"NNCF_EXTENSION_LOAD_TIMEOUT": "-5"},
           "world-size-text": {"WORLD_SIZE": "many"},
           "local-rank-huge": {"LOCAL_RANK": "99999999999"},
           "omp-threads-10000": {"OMP_NUM_THREADS": "10000"},
           "omp-threads-text": {"OMP_NUM_THREADS": "all"}}
    cases = [Case("environment", name, predict, env=e) for name, e in env.items()]
    cases.append(Case("environment", "ascii-terminal-non-ascii-path",
                      ["predict", ARCH, "--table", "{d}/таблица-表.json"],
                      env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}))
    return cases


# ------------------------------------------------------------ numeric bounds
def _bounds_cases() -> list:
    from corpus import DEVICE

    Case = _case()
    meas = ["measure", "{d}/m.onnx", "--backend", "onnxruntime"]
    many = ",".join(f"{0.5 + i / 1000:g}" for i in range(10000))
    hw = {"measure-threads-10000": meas + ["--threads", "10000"],
          "measure-iterations-1e10": meas + ["--iterations", "10000000000"],
          "measure-duration-a-day": meas + ["--duration", "86400"],
          "measure-duration-inf": meas + ["--duration", "inf"],
          "measure-shape-600GB": ["measure", "{d}/m.onnx", "--backend", "onnxruntime",
                                  "--shape", "1000000,3,224,224"],
          "profile-batch-100000": ["profile", "--space", "tiny-32", "--backend", "onnxruntime",
                                   "--batch", "100000", "--quick", "--out", "{d}/t.json"],
          "profile-calibration-nets-1e9": ["profile", "--space", "tiny-32", "--backend",
                                           "onnxruntime", "--calibration-nets", "1000000000",
                                           "--quick", "--out", "{d}/t.json"],
          "profile-threads-10000": ["profile", "--space", "tiny-32", "--backend", "onnxruntime",
                                    "--threads", "10000", "--quick", "--out", "{d}/t.json"],
          "recalibrate-nets-1e9": ["tables", "recalibrate", str(DEVICE), "--nets", "1000000000",
                                   "--out", "{d}/t.json", "--quick"],
          "run-seed-negative": ["run", "--quick", "--out", "{d}/run", "--seed", "-1"],
          "run-budget-twice": ["run", "--quick", "--out", "{d}/run", "--budget-ms", "0.3,0.3"],
          "run-budget-10000": ["run", "--quick", "--out", "{d}/run", "--budget-ms", many],
          "train-lr-inf": ["train", "--space", "tiny-32", "--data", "digits", "--out", "{d}/run",
                           "--lr", "inf"],
          "train-lr-nan": ["train", "--space", "tiny-32", "--data", "digits", "--out", "{d}/run",
                           "--lr", "nan"],
          "train-seed-negative": ["train", "--space", "tiny-32", "--data", "digits", "--out",
                                  "{d}/run", "--seed", "-1"]}
    cases = [Case("numeric-bounds", name, argv, setup=_reference_onnx)
             for name, argv in hw.items()]
    dev = ["measure", "{d}/m.onnx", "--backend", "onnxruntime"]
    for name, extra in (("threads-10000", ["--threads", "10000"]),
                        ("iterations-1e10", ["--iterations", "10000000000"]),
                        ("shape-600GB", ["--shape", "1000000,3,224,224"]),
                        ("batch-1e6", ["--shape", "1,3,224,224", "--batch", "1000000"])):
        cases.append(Case("numeric-bounds", f"profilers-measure-{name}", dev + extra,
                          setup=_reference_onnx, tool="hwnas-profilers"))
    return cases


# ------------------------------------------------- links and foreign folders
@_once
def _checkpoint() -> bytes:
    import torch

    from hwnas.spaces import load_space
    from hwnas.train.checkpoint import Checkpoint, save_checkpoint
    from hwnas.train.supernet import Supernet

    space = load_space("tiny-32")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(Path(tmp) / "s.pt", Checkpoint(space, space, {"seed": 0}, {},
                                                        Supernet(space).state_dict()))
        return (Path(tmp) / "s.pt").read_bytes()


def _bundle(d: Path, edit: Callable[[dict], None]) -> None:
    from hwnas_profilers.onnxgraph import write_reference_model

    (d / "bundle" / "blocks").mkdir(parents=True)
    write_reference_model(d / "bundle" / "blocks" / "b.onnx")
    m = {"kind": "hwnas.block_bundle", "schema": 1, "space": "x", "space_id": "x",
         "blocks": [{"key": "b", "file": "blocks/b.onnx", "input_shape": [1, 16, 32, 32]}],
         "networks": [{"name": "n", "file": "blocks/b.onnx", "input_shape": [1, 16, 32, 32]}]}
    edit(m)
    (d / "bundle" / "manifest.json").write_text(json.dumps(m))


def _link_cases() -> list:
    from corpus import ARCH

    Case = _case()

    def user_folder(d: Path) -> None:
        (d / "supernet.pt").write_bytes(_checkpoint())
        (d / "mine").mkdir()
        (d / "mine" / "precious.txt").write_text("precious\n")

    def linked_engine(d: Path) -> None:
        (d / "supernet.pt").write_bytes(_checkpoint())
        (d / "outside").mkdir()
        (d / "outside" / "manifest.json").write_text(json.dumps(_engine_manifest("m.onnx", None)))
        (d / "mine").symlink_to(d / "outside")

    def lock_link(sub: str) -> Callable[[Path], None]:
        def setup(d: Path) -> None:
            (d / "outside").mkdir()
            (d / "outside" / "victim.txt").write_text("precious\n")
            (d / "run" / sub).mkdir(parents=True, exist_ok=True)
            (d / "run" / sub / ".hwnas.lock").symlink_to(d / "outside" / "victim.txt")
        return setup

    export = ["export", ARCH, "--supernet", "{d}/supernet.pt", "--backend", "onnxruntime",
              "--out", "{d}/mine", "--force", "--quick"]
    cases = [Case("links", "export-force-over-a-folder-without-manifest", export,
                  setup=user_folder),
             Case("links", "export-force-over-a-link", export, setup=linked_engine),
             Case("links", "blocks-export-force-over-a-folder-without-manifest",
                  ["blocks", "export", "--space", "tiny-32", "--out", "{d}/mine", "--force"],
                  setup=user_folder),
             Case("links", "run-lock-file-is-a-link",
                  ["run", "--quick", "--out", "{d}/run"], setup=lock_link(".")),
             Case("links", "train-lock-file-is-a-link",
                  ["train", "--space", "tiny-32", "--data", "digits", "--out", "{d}/run",
                   "--epochs", "1"], setup=lock_link("."))]
    return cases + _bundle_cases()


def _bundle_cases() -> list:
    """Block bundle manifests naming files out of the bundle, or shapes that are not."""
    Case = _case()
    cases = []

    def blocks(fn: Callable[[dict], None]) -> Callable[[Path], None]:
        return lambda d: _bundle(d, fn)

    def block(key, value):
        return blocks(lambda m: m["blocks"][0].__setitem__(key, value))

    bundle = {"file-dotdot": block("file", "../../outside.onnx"),
              "file-absolute": block("file", "/etc/passwd"),
              "file-links-out": blocks(lambda m: None),
              "shape-string": block("input_shape", "1,16,32,32"),
              "shape-int": block("input_shape", 5),
              "shape-2TiB": block("input_shape", [65536, 65536, 512, 1]),
              "network-without-name": blocks(lambda m: m["networks"][0].pop("name")),
              "block-key-list": block("key", ["b"])}
    for name, setup in bundle.items():
        if name == "file-links-out":
            def setup(d: Path, base=setup) -> None:
                base(d)
                (d / "bundle" / "blocks" / "b.onnx").unlink()
                (d / "bundle" / "blocks" / "b.onnx").symlink_to("/etc/hostname")
        cases.append(Case("links", f"bundle-{name}",
                          ["profile", "{d}/bundle", "--backend", "onnxruntime", "--quick",
                           "--out", "{d}/t.json"], setup=setup, tool="hwnas-profilers"))
    return cases


def cases() -> list:
    """The categories of this module, in a stable order."""
    return (_code_cases() + _cache_cases() + _manifest_cases() + _run_file_cases()
            + _image_cases() + _environment_cases() + _bounds_cases() + _link_cases())
