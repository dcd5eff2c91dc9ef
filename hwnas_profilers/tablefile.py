"""Reading and writing device-table JSON on the device side, atomically and under a lock.

Atomic writes, bounded reads and the lock come from ``hwnas_profilers.fileformat``, the one
file-format layer both packages share. The JSON written here is the
``hwnas.device_table`` schema 1 that ``hwnas.tables.device`` reads.

Every write is a read-modify-write under an exclusive lock (its file in the private
cache, not beside the table): the entries on disk and the ones to add are merged, so two processes profiling into one table both land
their measurements and neither truncates the other's; a reader sees the old file or the
new one, never half of one.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import fileformat
from .base import ProfilerError
from .fileformat import write_json_atomic, write_text_atomic  # noqa: F401 - re-exported

KIND = "hwnas.device_table"
SCHEMA = fileformat.KINDS[KIND]
# meta fields that must agree for measurements to share one table
IDENTITY = ("space_id", "backend", "precision", "threads", "batch", "mode", "runtime_version")


def read_json(path: "str | Path", what: str) -> Any:
    try:
        return fileformat.read_json(path, what)
    except fileformat.FormatError as exc:
        raise ProfilerError(str(exc)) from None


@contextlib.contextmanager
def locked(path: "str | Path") -> Iterator[None]:
    """Exclusive lock for a read-modify-write of ``path`` across processes (filelock)."""
    try:
        with fileformat.locked(path, what=f"device table {path}"):
            yield
    except fileformat.LockTimeout as exc:
        raise ProfilerError(str(exc)) from None


def read_table(path: "str | Path") -> dict[str, Any]:
    d = read_json(path, "device table")
    try:
        fileformat.check_header(d, KIND, f"device table {path}", "device table")
    except fileformat.FormatError as exc:
        raise ProfilerError(str(exc)) from None
    if not isinstance(d.get("entries"), Mapping) or not isinstance(d.get("meta"), Mapping):
        raise ProfilerError(f"device table {path}: 'entries' and 'meta' must be mappings")
    return dict(d)


def identity_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    dev = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
    return {k: meta.get(k) for k in IDENTITY} | {"target": dev.get("target"),
                                                  "machine": dev.get("name")}


def check_compatible(path: "str | Path", on_disk: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Refuse to mix measurements of another space, backend, device, precision or machine."""
    a, b = identity_of(on_disk.get("meta", {})), identity_of(meta)
    diff = [f"{k}: {a[k]!r} on disk vs {b[k]!r} now" for k in a if a[k] != b[k]]
    if diff:
        raise ProfilerError(f"device table {path} was measured differently ({'; '.join(diff)}); "
                            "use another --out, or remove the file to start again")


def merge_write(path: "str | Path", base: Mapping[str, Any], entries: Mapping[str, Any] | None = None,
                meta_updates: Mapping[str, Any] | None = None,
                top: Mapping[str, Any] | None = None,
                meta_maps: Mapping[str, Mapping[str, Any]] | None = None,
                replace_entries: bool = False) -> dict[str, Any]:
    """Under the lock: read the table on disk (or start from ``base``), add ``entries``
    (keeping whichever of two ok measurements has more samples; ok beats failed; with
    ``replace_entries`` the given ones win), merge the mappings ``meta_maps`` into meta key
    by key the same way, update meta and top-level fields, write atomically. Returns the
    table now on disk."""
    path = Path(path)
    with locked(path):
        if path.exists():
            current = read_table(path)
            check_compatible(path, current, base["meta"])
        else:
            current = copy.deepcopy(dict(base))
        merged = dict(current.get("entries", {}))
        for key, new in (entries or {}).items():
            old = merged.get(key)
            if old is None or replace_entries or _better(new, old):
                merged[key] = new
        current["entries"] = {k: merged[k] for k in sorted(merged)}
        meta = dict(current.get("meta", {}))
        meta.update(meta_updates or {})
        for name, new_map in (meta_maps or {}).items():
            sub = dict(meta.get(name) or {})
            for key, new in new_map.items():
                if key not in sub or replace_entries or _better(new, sub[key]):
                    sub[key] = new
            meta[name] = sub
        current["meta"] = meta
        current.update(top or {})
        write_json_atomic(path, current)  # refuses NaN/Infinity
        return current


def _better(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    if old.get("status") != "ok":
        return new.get("status") == "ok"
    return new.get("status") == "ok" and int(new.get("n", 0)) > int(old.get("n", 0))
