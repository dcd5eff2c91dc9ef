"""A block bundle's manifest entries checked before any file is opened.

A bundle travels to the device (copied, unpacked, handed over): its manifest is input.
Every block and network entry needs a name, a file that stays inside the bundle (no
absolute path, no ``..``, no link leading out of it) and an input shape of four positive
sizes whose tensor fits in memory; anything else is one line before the first load, so a
profiler never opens ``/etc/passwd`` because a manifest said so, nor tries a 2 TiB input.
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


def inside_bundle(bundle: Path, rel: Any, where: str) -> Path:
    """``bundle / rel`` for a relative path that stays inside ``bundle``."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        raise ProfilerError(f"{where}: file {echo(rel)} is not a relative path in the bundle")
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts:
        raise ProfilerError(f"{where}: file {echo(rel)} leads out of the bundle; not opened")
    p = bundle / rel
    pair = resolved(p, bundle)
    if pair is None:
        raise ProfilerError(f"{where}: file {echo(rel)} cannot be resolved")
    real, home = pair
    if home not in real.parents:
        raise ProfilerError(f"{where}: file {echo(rel)} links out of the bundle (to {real}); "
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
            inside_bundle(bundle, e.get("file"), where)
            _shape(e.get("input_shape"), where)
