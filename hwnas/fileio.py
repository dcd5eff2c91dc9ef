"""Atomic writes and guarded reads of JSON files.

Every table and manifest goes through here: a write lands in a temporary file in the
same folder, is fsynced and renamed over the target, so a reader sees the old file or
the new one, never half of one. ``locked`` serialises read-modify-write cycles of
several processes on one file (POSIX advisory lock on a side file). Both come from the
device-side package ``profilers``, which cannot import hwnas.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from profilers.tablefile import locked, write_text_atomic  # one implementation, shared

from .errors import TableError

__all__ = ["check_header", "locked", "read_json", "write_json_atomic", "write_text_atomic"]


def _finite(obj: Any) -> Any:
    # JSON has no NaN/Infinity; refuse to write them rather than produce a foreign file.
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write non-finite number {obj!r} to JSON")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json_atomic(path: "str | Path", obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(_finite(obj), indent=1, sort_keys=False) + "\n")


def read_json(path: "str | Path", what: str = "file") -> Any:
    """Read a JSON file, turning every failure into one clear ``TableError`` line."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{what} {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(f"{what} {path} cannot be read: {exc}") from None
    if not text.strip():
        raise TableError(f"{what} {path} is empty")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise TableError(f"{what} {path} is not valid JSON (truncated or corrupt?): {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")


def check_header(d: Any, kind: str, schema: int, source: str, noun: str,
                 error: type[Exception] = TableError) -> None:
    """Refuse a decoded file that is not ``kind`` at schema version ``schema``."""
    if not isinstance(d, Mapping) or d.get("kind") != kind:
        raise error(f"{source} is not an hwnas {noun} (kind {kind!r} missing)")
    if d.get("schema") != schema:
        raise error(f"{source} has schema version {d.get('schema')!r}; this hwnas reads "
                    f"schema {schema}")
