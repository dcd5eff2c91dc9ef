"""The one JSON file-format layer of hwnas and its device-side profilers.

Every table, manifest, bundle and checkpoint sidecar is read and written here, by both
packages (``hwnas_profilers`` never imports ``hwnas``, so the layer lives on the device side and
``hwnas.fileio`` re-exports it with hwnas's error type). What it guarantees:

- **Bounded reads of untrusted files**: a size limit checked before reading, numbers that
  are finite and of sane size (a 400-digit integer or ``1e400`` is refused at parse time,
  not later as an ``OverflowError``), nesting at most ``MAX_DEPTH`` levels (the C JSON
  scanner otherwise recurses until ``RecursionError``), and one error line that names the
  file and never echoes more than ``ECHO`` characters of what it found.
- **Atomic writes**: a unique temporary file (``tempfile.mkstemp``) in the target's folder,
  fsync, rename; a failure (a full disk, a read-only folder) leaves the previous file
  intact and no temporary file behind.
- **Locks** through ``filelock`` (maintained, portable, with a timeout) instead of a
  hand-written ``fcntl`` lock, which took no lock at all off POSIX and waited forever on a
  stuck holder.
- **Header checks** (``kind`` and ``schema``), in one function for every format; the
  schema version of every format is declared once, in ``KINDS``, and read from there by
  the modules that write and check each format.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

# every hwnas file format: kind -> schema version this code reads and writes
KINDS = {
    "hwnas.device_table": 1,
    "hwnas.block_bundle": 1,
    "hwnas.architecture": 1,
    "hwnas.accuracy_table": 1,
    "hwnas.engine_manifest": 2,
    "hwnas.frontier": 1,
    "hwnas.baselines": 1,
    "hwnas.supernet_checkpoint": 1,
}

MAX_BYTES = 64 * 1024 * 1024   # a proxyless-mobile table with every field is about 0.3 MB
MAX_DEPTH = 64                 # the deepest hwnas format nests 5 levels
MAX_INT_DIGITS = 30            # a latency count or seed never needs more
ECHO = 80                      # characters of a bad value an error line may quote
LOCK_TIMEOUT_S = 600.0


class FormatError(ValueError):
    """A file that is not what it claims: its message is one line naming the file."""


def echo(value: Any) -> str:
    """A bad value as an error line may quote it: one line, at most ``ECHO`` characters."""
    s = " ".join(repr(value).split())
    return s if len(s) <= ECHO else s[:ECHO] + f"... ({len(s)} characters)"


def one_line(text: str, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} characters)"


def _float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"number {echo(s)} is out of range (not a finite float)")
    return v


def _int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(s)} digits (at most {MAX_INT_DIGITS})")
    return int(s)


def _constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not allowed")


def depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of decoded JSON/YAML, walked without recursion; stops past ``limit``."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list, tuple)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def number(value: Any, where: str, lo: float = 0.0, hi: float = 1e12, integer: bool = False,
           error: type[Exception] = FormatError) -> float:
    """A field that must be a finite number (an integer with ``integer``) in [lo, hi]:
    the typed boundary every table field passes, so no later code sees a string, a bool,
    a NaN or a 400-digit count."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer and isinstance(value, float):
        ok = value.is_integer()
    if ok:
        try:
            ok = math.isfinite(float(value)) and lo <= value <= hi
        except OverflowError:
            ok = False
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise error(f"{where} must be {kind} from {lo:g} to {hi:g}, got {echo(value)}")
    return int(value) if integer else float(value)


def check_size(path: "str | Path", what: str, limit: int = MAX_BYTES) -> int:
    size = Path(path).stat().st_size
    if size > limit:
        raise FormatError(f"{what} {path} is {size / 2**20:.1f} MiB; hwnas reads such files up "
                          f"to {limit / 2**20:.0f} MiB (is it the right file?)")
    return size


def loads(text: str, source: str) -> Any:
    """Decode JSON text with the bounds above; ``FormatError`` names ``source``."""
    try:
        obj = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise FormatError(f"{source} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise FormatError(f"{source} is not valid JSON (truncated or corrupt?): "
                          f"{one_line(str(exc), 200)}") from None
    if depth(obj) > MAX_DEPTH:
        raise FormatError(f"{source} nests deeper than {MAX_DEPTH} levels")
    return obj


def read_text(path: "str | Path", what: str = "file", limit: int = MAX_BYTES,
              errors: str = "strict") -> str:
    """The text of an untrusted file (JSON, YAML, CSV), its size checked before reading;
    every failure is one ``FormatError`` line."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{what} {path} does not exist" if not path.exists()
                          else f"{what} {path} is not a file")
    try:
        check_size(path, what, limit)
        return path.read_text(encoding="utf-8", errors=errors)
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what} {path} cannot be read: {os_reason(exc)}") from None


def read_json(path: "str | Path", what: str = "file", limit: int = MAX_BYTES) -> Any:
    """Read and decode a JSON file; every failure is one ``FormatError`` line."""
    text = read_text(path, what, limit)
    if not text.strip():
        raise FormatError(f"{what} {path} is empty")
    return loads(text, f"{what} {path}")


def check_header(d: Any, kind: str, source: str, noun: str, schema: int | None = None) -> None:
    """Refuse a decoded file that is not ``kind`` at the schema version this code reads."""
    schema = KINDS[kind] if schema is None else schema
    if not isinstance(d, Mapping) or d.get("kind") != kind:
        raise FormatError(f"{source} is not an hwnas {noun} (kind {kind!r} missing)")
    if d.get("schema") != schema:
        got = echo(d.get("schema"))
        raise FormatError(f"{source} has schema version {got}; this hwnas reads schema "
                          f"{schema}, not schema {got}")


def os_reason(exc: BaseException) -> str:
    """An OS error as one line: the cause in words, without Python's class names."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({one_line(str(exc.filename), 200)})" if exc.filename else "")
    return one_line(f"{exc.__class__.__name__}: {exc}", 200)


def _finite(obj: Any) -> Any:
    # JSON has no NaN/Infinity; refuse to write them rather than produce a foreign file.
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write non-finite number {obj!r} to JSON")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = 1) -> str:
    """JSON text, never with NaN or Infinity (which are not JSON)."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False)


def write_json_atomic(path: "str | Path", obj: Any) -> Path:
    return write_text_atomic(path, dumps(obj) + "\n")


def write_bytes_atomic(path: "str | Path", data: bytes) -> Path:
    return atomic_write(Path(path), lambda fh: fh.write(data))


def write_text_atomic(path: "str | Path", text: str) -> Path:
    return atomic_write(Path(path), lambda fh: fh.write(text.encode("utf-8")))


@contextlib.contextmanager
def atomic_path(path: "str | Path") -> Iterator[Path]:
    """A unique temporary path beside ``path`` (``tempfile.mkstemp``), renamed over it only
    when the block ends cleanly; on any failure (a full disk included) the temporary file
    is removed and the previous ``path`` is left intact. For writers that take a file name
    (an ONNX exporter) and, through :func:`atomic_write`, for everything else."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes 0600; a table or checkpoint is meant to be shared, as a plain
        # open() would have made it: 0666 less the umask
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    try:  # Linux says it without changing it (os.umask would, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only read sets it: set it straight back
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> Path:
    """``write(binary file)`` into :func:`atomic_path`, fsynced before the rename: a reader
    sees the old file or the new one, never half of one."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def cache_root(sub: str = "") -> Path:
    """The hwnas cache (``$HWNAS_CACHE`` or ``$XDG_CACHE_HOME/hwnas``, default
    ``~/.cache/hwnas``), private to the user: never a fixed, guessable folder under /tmp
    where another user could plant files or links first."""
    from .cachedir import private_root  # 0700, refused when others could write it

    root = private_root()
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


class LockTimeout(RuntimeError):
    pass


@contextlib.contextmanager
def locked(path: "str | Path", timeout: float = LOCK_TIMEOUT_S, what: str = "") -> Iterator[None]:
    """Exclusive inter-process lock for ``path``, by filelock. The lock file lives in the
    private cache (``cache_root("locks")``, named by a hash of the absolute path), not
    beside ``path``: a folder of tables collects no empty ``.lock`` files, and the lock
    file is never deleted, which would let two processes lock two different inodes."""
    import hashlib

    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(path.absolute().resolve()).encode()).hexdigest()[:24]
    lock = FileLock(str(cache_root("locks") / f"{digest}.lock"), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeout(f"{what or path} is locked by another process (waited {timeout:.0f} s"
                          f"; lock file {lock.lock_file})") from None
    try:
        yield
    finally:
        lock.release()


def try_lock(path: "str | Path", what: str):
    """A held lock on folder ``path`` (``.hwnas.lock`` inside it), or ``LockTimeout`` at once
    when another process holds it: two jobs must not write one output folder."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path / ".hwnas.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeout(f"{what} {path} is in use by another hwnas process (lock "
                          f"{lock.lock_file}); wait for it or choose another folder") from None
    return lock
