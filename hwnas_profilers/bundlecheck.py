"""A block bundle's manifest entries checked before any file is opened.

A bundle travels to the device (copied, unpacked, handed over): its manifest is input.
Every block and network entry needs a name, a file that stays inside the bundle (no
absolute path, no ``..``, no link leading out of it) and an input shape of four positive
sizes whose tensor fits in memory; anything else is one line before the first load, so a
profiler never opens ``/etc/passwd`` because a manifest said so, nor tries a 2 TiB input.
The check that a path stays in its folder (:func:`inside`) is the run folders' too.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from .base import ProfilerError
from .fileformat import echo

MAX_DIM = 65536


def resolved(p: Path, home: Path) -> "tuple[Path, Path] | None":
    """``p`` and ``home`` with every link followed, or None when either cannot be resolved
    (a loop, a name the OS refuses): what a check that a path stays in its folder compares."""
    try:
        return p.resolve(), home.resolve()
    except (OSError, RuntimeError):
        return None


def inside(folder: Path, rel: Any, where: str, *, nested: bool = True) -> Path:
    """``folder / rel`` for a relative path that stays inside ``folder``: no absolute path,
    no ``..``, no link leading out of it; with ``nested=False``, a plain file name directly
    in ``folder``. The one check of the files a bundle's manifest names and of those a run
    folder's files name (:func:`hwnas.runfiles.inside`)."""
    kind = "relative path" if nested else "file name"
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel or \
            (not nested and "/" in rel) or PurePosixPath(rel).name in ("", "."):
        raise ProfilerError(f"{where}: file {echo(rel)} is not a {kind} inside {folder}")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        raise ProfilerError(f"{where}: file {echo(rel)} leads out of {folder}; not opened")
    p = folder / rel
    pair = resolved(p, folder)
    if pair is None:
        raise ProfilerError(f"{where}: file {echo(rel)} in {folder} cannot be resolved")
    real, home = pair
    if home not in real.parents or (not nested and real.parent != home):
        raise ProfilerError(f"{where}: file {echo(rel)} links out of {folder} (to {real}); "
                            "not opened")
    return p


def _shape(value: Any, where: str) -> list[int]:
    from .bounds import check_input

    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DIM for d in value):
        raise ProfilerError(f"{where}: input_shape must be 4 sizes from 1 to {MAX_DIM}, got "
                            f"{echo(value)}")
    check_input(value, f"{where}: input")
    return value


def check_entries(bundle: Path, m: Mapping[str, Any]) -> None:
    """Every block (key, file, input_shape) and network (name, file, input_shape) of the
    manifest ``m`` of ``bundle``, typed and kept inside the bundle."""
    src = f"{bundle}/manifest.json"
    for kind, name in (("blocks", "key"), ("networks", "name")):
        for i, e in enumerate(m.get(kind, [])):
            where = f"{src}: {kind}[{i}]"
            if not isinstance(e, Mapping):
                raise ProfilerError(f"{where} must be an object, got {echo(e)}")
            if not isinstance(e.get(name), str) or not e[name] or len(e[name]) > 400:
                raise ProfilerError(f"{where} needs a {name} (a string), got "
                                    f"{echo(e.get(name))}")
            inside(bundle, e.get("file"), where)
            _shape(e.get("input_shape"), where)
