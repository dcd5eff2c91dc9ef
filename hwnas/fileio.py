"""Atomic writes and guarded reads of JSON files.

Every table and manifest goes through here: a write lands in a temporary file in the
same folder, is fsynced and renamed over the target, so a reader sees the old file or
the new one, never half of one. ``locked`` serialises read-modify-write cycles of
several processes on one file (POSIX advisory lock on a side file).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import TableError


def _finite(obj: Any) -> Any:
    # JSON has no NaN/Infinity; refuse to write them rather than produce a foreign file.
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write non-finite number {obj!r} to JSON")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_text_atomic(path: "str | Path", text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


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


@contextlib.contextmanager
def locked(path: "str | Path") -> Iterator[None]:
    """Exclusive advisory lock for a read-modify-write of ``path`` across processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX: atomic rename still protects readers
            pass
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
