"""Files hwnas reads back (engine manifests, run summaries, baselines) read as input.

A run folder is the user's to edit, copy and hand around, so what hwnas wrote there is
read back with the same bounds as a table: size and nesting limits
(:mod:`hwnas.fileio`), the header, the published JSON Schema of its kind
(:mod:`hwnas.schemas`, checked here by a small validator of the keywords those schemas
use, so no validator library is needed at run time), and, for an engine, the paths it
names kept inside its folder and its files' sha256 verified before it is measured or
reused. Every failure is one :class:`~hwnas.errors.UserError` line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from .errors import UserError

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, name: str) -> bool:
    if name in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return name == "number" or isinstance(value, int) or float(value).is_integer()
    return isinstance(value, _TYPES[name])


def _where(path: str) -> str:
    return path or "the top level"


def _check_value(doc: Any, schema: Mapping[str, Any], path: str) -> None:
    from hwnas_profilers.fileformat import echo

    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is(doc, t) for t in names):
            raise ValueError(f"{_where(path)} must be {' or '.join(names)}, got {echo(doc)}")
    if "const" in schema and doc != schema["const"]:
        raise ValueError(f"{_where(path)} must be {schema['const']!r}, got {echo(doc)}")
    if "enum" in schema and doc not in schema["enum"]:
        raise ValueError(f"{_where(path)} must be one of {schema['enum']}, got {echo(doc)}")
    if isinstance(doc, (int, float)) and not isinstance(doc, bool):
        if "minimum" in schema and doc < schema["minimum"]:
            raise ValueError(f"{_where(path)} must be >= {schema['minimum']}, got {echo(doc)}")
        if "maximum" in schema and doc > schema["maximum"]:
            raise ValueError(f"{_where(path)} must be <= {schema['maximum']}, got {echo(doc)}")
    if isinstance(doc, str):
        if len(doc) > schema.get("maxLength", len(doc)):
            raise ValueError(f"{_where(path)} is longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], doc):
            raise ValueError(f"{_where(path)} does not look right, got {echo(doc)}")


def check_schema(doc: Any, schema: Mapping[str, Any], path: str = "") -> None:
    """Raise ``ValueError`` naming the first place ``doc`` breaks ``schema`` (the subset of
    draft 2020-12 hwnas's schemas use: type, const, enum, minimum, maximum, maxLength,
    pattern, required, properties, patternProperties, additionalProperties, items,
    minItems, maxItems)."""
    stack = [(doc, schema, path)]
    while stack:  # no recursion: a deep file cannot exhaust the stack
        d, s, p = stack.pop()
        _check_value(d, s, p)
        if isinstance(d, dict):
            for k in s.get("required", []):
                if k not in d:
                    raise ValueError(f"{_where(p)} lacks {k!r}")
            props, pats = s.get("properties", {}), s.get("patternProperties", {})
            extra = s.get("additionalProperties", True)
            for k, v in d.items():
                sub = props.get(k) or next((ps for pat, ps in pats.items()
                                            if re.search(pat, str(k))), None)
                if sub is None and extra is False:
                    raise ValueError(f"{_where(p)} has an unknown field {k!r}")
                if sub is None and isinstance(extra, dict):
                    sub = extra
                if sub is not None:
                    stack.append((v, sub, f"{p}.{k}" if p else str(k)))
        if isinstance(d, list):
            if len(d) < s.get("minItems", 0) or len(d) > s.get("maxItems", len(d)):
                raise ValueError(f"{_where(p)} has {len(d)} items")
            if isinstance(s.get("items"), dict):
                stack.extend((v, s["items"], f"{p}[{i}]") for i, v in enumerate(d))


def read_run_file(path: "str | Path", kind: str, what: str) -> dict[str, Any]:
    """A JSON file hwnas wrote and now reads back: bounded, its header and its published
    schema checked; one ``UserError`` line otherwise."""
    from hwnas_profilers.fileformat import KINDS, FormatError, check_header

    from .fileio import read_json
    from .schemas import load_schema

    try:
        d = read_json(path, what)
        check_header(d, kind, f"{what} {path}", what, KINDS[kind])
        check_schema(d, load_schema(kind))
    except FormatError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"{what} {path}: {exc} (was it edited by hand?)") from None
    return d


def inside(folder: Path, name: Any, what: str) -> Path:
    """``folder / name`` for a plain file name that stays in ``folder`` (no ``..``, no
    absolute path, no link out of it; :func:`hwnas_profilers.bundlecheck.inside`, the
    bundles' check); one line otherwise."""
    from hwnas_profilers.bundlecheck import inside as inside_folder

    from .profiling import profiler_errors

    with profiler_errors():
        return inside_folder(folder, name, what, nested=False)


def engine_file(manifest_path: "str | Path", m: Mapping[str, Any]) -> Path:
    """The engine file a manifest names, inside the manifest's folder, whose sha256 is the
    one the manifest records: checked before the engine is measured or reused."""
    from hwnas_profilers.cachedir import sha256_file

    folder = Path(manifest_path).parent
    eng = m.get("engine")
    if not isinstance(eng, dict):
        raise UserError(f"engine manifest {manifest_path}: 'engine' must be an object")
    what = f"engine manifest {manifest_path}"
    path = inside(folder, eng.get("file"), what)
    sums = eng.get("sha256")
    if not isinstance(sums, dict) or path.name not in sums:
        raise UserError(f"{what} records no sha256 for {path.name}; hwnas does not vouch "
                        "for it")
    for name, want in sums.items():  # every file of the engine (an IR's .xml and .bin)
        p = inside(folder, name, what)
        if not p.is_file():
            raise UserError(f"engine file {p} is missing")
        got = sha256_file(p)
        if got != want:
            raise UserError(f"engine file {p} does not match its manifest (sha256 "
                            f"{got[:12]}..., manifest {str(want)[:12]}...): it changed after "
                            "hwnas wrote it; build it again")
    return path


def engine_shape(m: Mapping[str, Any], source: str) -> "tuple[int, ...] | None":
    """The manifest's input shape as four positive integers, or None when absent."""
    from hwnas_profilers.fileformat import echo, number

    eng = m.get("engine") if isinstance(m.get("engine"), dict) else {}
    shape = eng.get("input_shape")
    if shape is None:
        return None
    if not isinstance(shape, list) or len(shape) != 4:
        raise UserError(f"{source}: engine.input_shape must be 4 sizes N,C,H,W, got {echo(shape)}")
    dims = tuple(int(number(v, f"{source}: engine.input_shape", 1, 65536, integer=True,
                            error=UserError)) for v in shape)
    from hwnas_profilers import ProfilerError
    from hwnas_profilers.bounds import check_input

    try:
        check_input(dims, f"{source}: engine.input_shape")
    except ProfilerError as exc:
        raise UserError(str(exc)) from None
    return dims


_NUM_OR_NULL = {"type": ["number", "null"]}
_TEXT = {"type": "string", "maxLength": 4096}
# the fields of summary_{tag}.json a rerun and a redrawn report read (it has no kind:
# it is the run's own record, so it is checked here rather than in a published schema)
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["space", "space_id", "data", "results"],
    "properties": {
        "space": _TEXT, "space_id": _TEXT, "data": _TEXT, "backend": _TEXT,
        "precision": _TEXT, "statistic": _TEXT, "device_table": {"type": ["string", "null"],
                                                                  "maxLength": 4096},
        "results": {"type": "array", "maxItems": 1000, "items": {
            "type": "object", "required": ["budget_ms", "choices"],
            "properties": {
                "budget_ms": {"type": "number", "minimum": 0},
                "choices": {"type": "array", "maxItems": 1024,
                            "items": {"type": "string", "maxLength": 200}},
                "predicted_ms": _NUM_OR_NULL, "predicted_upper_ms": _NUM_OR_NULL,
                "measured_ms": _NUM_OR_NULL, "measured_spread_ms": _NUM_OR_NULL,
                "prediction_error": _NUM_OR_NULL, "val_accuracy": _NUM_OR_NULL,
                "test_accuracy": _NUM_OR_NULL, "score": _NUM_OR_NULL,
                "meets_budget": {"type": ["boolean", "null"]},
                "engine": {"type": ["string", "null"], "maxLength": 4096},
                "manifest": {"type": ["string", "null"], "maxLength": 4096}}}}}}


def read_summary(path: "str | Path") -> dict[str, Any]:
    """A run's ``summary_{tag}.json`` read back as input; an engine or manifest path it
    names outside the run folder is dropped (an edited path is not followed out of it)."""
    from hwnas_profilers.fileformat import FormatError

    from .fileio import read_json

    path = Path(path)
    try:
        d = read_json(path, "run summary")
        check_schema(d, SUMMARY_SCHEMA)
    except FormatError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"run summary {path}: {exc} (was it edited by hand?)") from None
    home = path.parent.resolve()
    for r in d["results"]:
        for key in ("manifest", "engine"):
            if r.get(key) and home not in Path(r[key]).resolve().parents:
                r[key] = None  # outside the folder (edited, or the folder moved): not read
    return d


def report_dir(run: Any) -> Path:
    """The report folder of ``run`` (a :class:`~hwnas.run.folder.RunFolder`), refused when
    a link would lead out of the run folder."""
    p = inside(run.root, run.report_dir.name, f"report of {run.root}")
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        raise UserError(f"{p} is a link or a file, not the report folder hwnas made; move "
                        "it away and redraw")
    return p


_NUMBER = {"type": "number"}
# what the code reads of baselines_{tag}.json beyond its published schema
BASELINES_READ: dict[str, Any] = {
    "type": "object", "required": ["score_to_accuracy", "networks"],
    "properties": {
        "score_to_accuracy": {
            "type": "object", "required": ["slope", "intercept", "fitted_on", "rms_residual"],
            "properties": {"slope": _NUMBER, "intercept": _NUMBER, "rms_residual": _NUMBER,
                           "fitted_on": {"type": "integer", "minimum": 0}}},
        "networks": {"type": "array", "maxItems": 10000, "items": {
            "type": "object", "required": ["label", "kind", "choices"],
            "properties": {"label": _TEXT, "kind": _TEXT,
                           "choices": {"type": "array", "maxItems": 1024,
                                       "items": {"type": "string", "maxLength": 200}},
                           "predicted_ms": _NUM_OR_NULL, "measured_ms": _NUM_OR_NULL,
                           "measured_spread_ms": _NUM_OR_NULL, "measured_p90_ms": _NUM_OR_NULL,
                           "table_score": _NUM_OR_NULL, "predicted_accuracy": _NUM_OR_NULL,
                           "supernet_val_accuracy": _NUM_OR_NULL,
                           "supernet_test_accuracy": _NUM_OR_NULL}}},
        "engine_files": {"type": "object", "additionalProperties": _TEXT}}}


def read_baselines(path: "str | Path") -> dict[str, Any]:
    """``baselines_{tag}.json`` read back: its published schema and the fields the report
    and a rerun use, typed; one line otherwise."""
    d = read_run_file(path, "hwnas.baselines", "baselines")
    try:
        check_schema(d, BASELINES_READ)
    except ValueError as exc:
        raise UserError(f"baselines {path}: {exc} (was it edited by hand?)") from None
    return d
