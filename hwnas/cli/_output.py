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
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        human(data)


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
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    console().print(t)


def progress_bar(description: str, total: int):
    """A rich progress bar on stderr (silent when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = prog.add_task(description, total=total)
    return prog, task
