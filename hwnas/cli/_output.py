"""Printing for the CLI: rich tables for people, ``--json`` for machines."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable


def add_json_flag(p) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def emit(args, data: Any, human: Callable[[Any], None] | None = None) -> None:
    """Print ``data`` as JSON with ``--json``; else call ``human`` (or pretty-print)."""
    if getattr(args, "json", False) or human is None:
        # never NaN/Infinity: they are not JSON (a non-finite figure prints as null)
        sys.stdout.write(json.dumps(_json_safe(data), indent=1, allow_nan=False) + "\n")
    else:
        human(data)


def _json_safe(obj: Any) -> Any:
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def add_force_flag(p) -> None:
    p.add_argument("--force", action="store_true",
                   help="replace an existing output (the old one stays until the new is complete)")


def check_out(path: "str | None", force: bool, what: str = "output", folder: bool = False,
              made_by: "str | None" = None):
    """Refuse, before any work, an output that exists (unless ``force``), whose parent is
    a file, or whose folder is not writable: one line, exit 2, nothing touched. With
    ``made_by`` (a file kind, such as ``hwnas.block_bundle``), an existing folder is
    written into only when its ``manifest.json`` is of that kind: ``--force`` replaces
    what hwnas made, never a folder of the user's own files."""
    import os
    from pathlib import Path

    from ..errors import UserError

    if not path:
        return None
    p = Path(path)
    if p.exists() and not force:
        raise UserError(f"{what} {p} exists; pass --force to replace it, or choose another path")
    if p.exists() and folder != p.is_dir():
        raise UserError(f"{what} {p} exists and is {'not ' if folder else ''}a folder")
    if made_by and os.path.lexists(p):
        _made_by(p, made_by, what)
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{what} {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {p}: folder {parent} is not writable")
    return p


def _made_by(p, kind: str, what: str) -> None:
    """``p`` is a real folder whose ``manifest.json`` is an hwnas file of ``kind``."""
    from hwnas_profilers.fileformat import FormatError, read_json

    from ..errors import UserError

    if p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
        return  # an empty folder holds nothing to lose
    m = p / "manifest.json"
    try:
        ok = not p.is_symlink() and m.is_file() and not m.is_symlink() \
            and (read_json(m, "manifest") or {}).get("kind") == kind
    except (FormatError, AttributeError):
        ok = False
    if not ok:
        raise UserError(f"{what} {p} holds no {kind.split('.', 1)[-1].replace('_', ' ')} "
                        "manifest (or is a link), so hwnas did not make it: --force replaces "
                        "only what hwnas made; move its files or choose another path")


def numbers(text: str, flag: str) -> tuple[float, ...]:
    """Comma-separated numbers of an option (empty text: none), or one line, exit 2."""
    from ..errors import UserError

    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UserError(f"{flag} takes numbers separated by commas, got {text!r}") from None


def warn(line: "str | None") -> None:
    """One warning line on stderr (stdout stays clean for --json)."""
    if line:
        sys.stderr.write(f"hwnas: {line}\n")


def console():
    import sys

    from rich.console import Console

    # piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns
    return Console() if sys.stdout.isatty() else Console(width=200)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        # fold, never cut: an architecture such as k5e3,skip,k3e6,... is one long word
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[str(v) for v in r])
    console().print(t)


def fmt(key: str, value: Any) -> str:
    """One value as a person reads it: shares (``within_*``) as percentages, ``*_pct``
    with a percent sign, other floats to 4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if "within" in key:
            return f"{100 * value:.1f}%"
        if key.endswith("_pct"):
            return f"{value:.2f}%"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float)) for v in value):
            return ", ".join(fmt(key, v) for v in value) or "-"
        return f"{len(value)} entries"
    return str(value)


def fields(title: str, mapping: Any) -> None:
    """A two-column table (field, value) of a mapping, nested mappings as dotted names."""
    def rows(m: Any, pre: str) -> list[list[str]]:
        out = []
        for k, v in m.items():
            if isinstance(v, dict):
                out += rows(v, f"{pre}{k}.")
            else:
                out.append([f"{pre}{k}", fmt(str(k), v)])
        return out

    table(title, ["field", "value"], rows(mapping, ""))


def _progress():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


def progress_bar(description: str, total: int):
    """A rich progress bar on stderr (silent when stderr is not a terminal)."""
    prog = _progress()
    task = prog.add_task(description, total=total)
    return prog, task


def stage_progress():
    """A rich progress display on stderr with one bar per stage, and the callback
    ``update(stage, done, total)`` the library's staged jobs report through."""
    prog = _progress()
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = prog.add_task(stage, total=total)
        prog.update(tasks[stage], completed=done, total=total)

    return prog, update
