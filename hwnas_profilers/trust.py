"""The trust boundary for files that run code when loaded.

An AOTInductor package (``.pt2`` with compiled kernels) is a shared library: loading it
``dlopen``\\ s the library and runs whatever its constructors do. hwnas loads such a file
only when it built the file itself: every package hwnas compiles (a ``torch-aoti``
engine, a block compiled in mode ``aoti``) has its sha256 recorded in the user's private
cache (:mod:`hwnas_profilers.cachedir`), and a package is loaded only when its bytes hash
to such a record. Any other package (one copied from another machine, one handed in by
someone else) needs an explicit ``--trust-code``, which :func:`code_trusted` carries to
the loaders; otherwise one line, exit 2, nothing loaded.

The bytes that are checked are the bytes that are loaded: the file is read once into a
private folder and loaded from there, so it cannot be swapped between check and load.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .base import ProfilerError

_TRUST_CODE: contextvars.ContextVar[bool] = contextvars.ContextVar("hwnas_trust_code",
                                                                   default=False)
_STORE = "trusted"
MAX_CODE_BYTES = 4 * 2**30  # an AOTInductor package of a large net is a few hundred MB


@contextlib.contextmanager
def code_trusted(on: bool = True) -> Iterator[None]:
    """Within the block, code-bearing files load without a record (``--trust-code``)."""
    token = _TRUST_CODE.set(bool(on))
    try:
        yield
    finally:
        _TRUST_CODE.reset(token)


def _store() -> Path:
    from .fileformat import cache_root

    return cache_root(_STORE)


def record_built(path: "str | Path") -> str:
    """Record that hwnas built ``path`` (its sha256 in the private cache); returns it."""
    from .cachedir import sha256_file
    from .fileformat import dumps, write_text_atomic

    digest = sha256_file(path)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    write_text_atomic(_store() / f"{digest}.json", dumps(
        {"kind": "hwnas.trusted_code", "sha256": digest, "file": Path(path).name,
         "date": now}) + "\n")
    return digest


def built_here(digest: str) -> bool:
    """True when hwnas recorded building a file of sha256 ``digest``."""
    rec = _store() / f"{digest}.json"
    return rec.is_file() and not rec.is_symlink()


def refusal(path: Path, what: str) -> ProfilerError:
    return ProfilerError(
        f"{path.name} is {what}: loading it runs the native code inside it. hwnas loads "
        "only packages it built itself (sha256 recorded in its private cache); pass "
        "--trust-code to load this one if you trust where it came from")


@contextlib.contextmanager
def private_copy(path: "str | Path") -> Iterator[tuple[Path, str]]:
    """``path`` copied into a fresh 0700 folder, and the copy's sha256: what is checked
    is what is loaded. The folder is removed on the way out."""
    src = Path(path)
    size = src.stat().st_size
    if size > MAX_CODE_BYTES:
        raise ProfilerError(f"{src.name} is {size / 2**30:.1f} GiB; hwnas loads packages up "
                            f"to {MAX_CODE_BYTES / 2**30:.0f} GiB")
    folder = Path(tempfile.mkdtemp(prefix="hwnas-load-"))
    try:
        dst = folder / src.name
        h = hashlib.sha256()
        with open(src, "rb") as fin, open(dst, "xb") as fout:
            for chunk in iter(lambda: fin.read(1 << 20), b""):
                h.update(chunk)
                fout.write(chunk)
        os.chmod(dst, 0o400)
        yield dst, h.hexdigest()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def require_trusted(path: Path, digest: str, what: str = "an AOTInductor package") -> None:
    """Raise unless hwnas built a file of this ``digest`` or the caller trusts code."""
    if _TRUST_CODE.get() or built_here(digest):
        return
    raise refusal(path, what)
