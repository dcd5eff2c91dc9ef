"""The hwnas cache as a folder nobody else can plant files in, and entries checked on reuse.

The cache holds what hwnas converted or compiled (fp16 and int8 copies of a model,
AOTInductor packages, exported bundles): a file found there is measured, or loaded as
native code, in place of the user's own model. So the cache is trusted only when the
user alone can write it: created 0700, refused (one line naming the fix) when another
user owns it or when group or others may write it. A converted entry is reused only when
its seal, written beside it by the process that made it, names the sha256 of the source
model, the converter's version and the entry's own sha256; anything else (a truncated
entry, a file copied in from elsewhere, a seal of another source) is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .fileformat import FormatError, dumps, echo, loads, os_reason, write_text_atomic

SEAL_SUFFIX = ".seal.json"
SEAL_KIND = "hwnas.cache_seal"


class CacheError(FormatError):
    """The cache folder cannot be used safely: one line naming the fix."""


def configured_root() -> Path:
    """``$HWNAS_CACHE``, else ``$XDG_CACHE_HOME/hwnas``, else ``~/.cache/hwnas`` (not made)."""
    env = os.environ.get("HWNAS_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "hwnas"


def check_configured() -> None:
    """Refuse, before any work, a ``HWNAS_CACHE`` that can never be a folder (an existing
    file, a path under a file such as ``/dev/null``); nothing is created."""
    root = configured_root()
    where = f"HWNAS_CACHE={echo(str(root))}" if os.environ.get("HWNAS_CACHE") else f"cache {root}"
    probe = root
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        what = "is not a folder" if probe == root else f"is under {probe}, which is not a folder"
        raise CacheError(f"{where} {what}; point HWNAS_CACHE at a folder of your own "
                         "(or unset it)")


def private_root() -> Path:
    """The cache folder, made 0700 when missing; refused when others could write it."""
    check_configured()
    root = configured_root()
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise CacheError(f"cannot make the hwnas cache {root}: {os_reason(exc)}; point "
                         "HWNAS_CACHE at a folder you can write") from None
    check_private(root)
    return root


def check_private(folder: Path) -> None:
    """``folder`` is a directory this user owns that no one else may write."""
    if not hasattr(os, "getuid"):  # no POSIX owners (Windows): the profile folder's ACLs rule
        return
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise CacheError(f"hwnas cache {folder}: {os_reason(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"hwnas cache {folder} is not a folder; point HWNAS_CACHE at a folder")
    if st.st_uid != os.getuid():
        raise CacheError(f"hwnas cache {folder} belongs to another user (uid {st.st_uid}); "
                         "files found there would be loaded as your models: set HWNAS_CACHE "
                         "to a folder of your own")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"hwnas cache {folder} is writable by group or others (mode "
                         f"{stat.S_IMODE(st.st_mode):o}), so anyone could plant files in it; "
                         f"fix it with: chmod 700 {folder} (or set HWNAS_CACHE to a folder "
                         "of your own)")


def sha256_file(path: "str | Path") -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _seal_path(entry: Path) -> Path:
    return entry.with_name(entry.name + SEAL_SUFFIX)


def seal(entry: "str | Path", source_sha256: str, converter: str) -> None:
    """Record, beside a cache entry just written, what it was made from and its sha256."""
    entry = Path(entry)
    write_text_atomic(_seal_path(entry), dumps({
        "kind": SEAL_KIND, "source_sha256": source_sha256, "converter": converter,
        "sha256": sha256_file(entry)}) + "\n")


def sealed(entry: "str | Path", source_sha256: str, converter: str) -> bool:
    """True when ``entry`` is a regular file whose seal names this source, this converter
    and the entry's own sha256. A stale or foreign entry and its seal are removed, so the
    caller rebuilds it."""
    entry = Path(entry)
    seal_file = _seal_path(entry)
    ok = False
    if entry.is_file() and not entry.is_symlink() and seal_file.is_file() \
            and not seal_file.is_symlink():
        try:
            d = loads(seal_file.read_text("utf-8"), str(seal_file))
            ok = (isinstance(d, dict) and d.get("kind") == SEAL_KIND
                  and d.get("source_sha256") == source_sha256
                  and d.get("converter") == converter and d.get("sha256") == sha256_file(entry))
        except (OSError, UnicodeDecodeError, FormatError):
            ok = False
    if not ok:
        for p in (entry, seal_file):
            if os.path.lexists(p):
                try:
                    p.unlink()
                except OSError:
                    pass  # the rebuild's atomic rename replaces it anyway
    return ok
