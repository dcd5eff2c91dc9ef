"""The ``hwnas`` command: parse, call one library function, print, exit 0/2/1.

Each module of this package that defines ``register(subparsers)`` adds its commands;
modules are found by listing the package, so a new command group is one new file.
Command modules stay light at import time: heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from ..errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
        # one line, exit 2: the same contract as every other bad input
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwnas", description="Hardware-aware NAS deployment: device tables, "
                     "accuracy tables, exact knapsack search, engine files.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "register"):
            mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..environment import check_environment, escaping_streams

    escaping_streams()  # a non-UTF-8 terminal gets escapes, never a UnicodeEncodeError
    parser = build_parser()
    args = parser.parse_args(argv)
    from hwnas_profilers.fileformat import FormatError, LockTimeout, one_line, os_reason

    try:
        check_environment()  # variables that would fail deep inside a run: before any work
        rc = _call(args)
    except (UserError, FormatError, LockTimeout) as exc:
        sys.stderr.write(f"hwnas: error: {one_line(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("hwnas: interrupted\n")
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return 0
    except OSError as exc:
        # a read-only folder, a full disk, a path whose parent is a file: the user's
        # environment, not a bug; every writer is atomic, so nothing earlier was lost
        sys.stderr.write(f"hwnas: error: {os_reason(exc)}\n")
        return 2
    return int(rc or 0)


def _call(args: argparse.Namespace) -> int:
    import warnings

    from ..errors import HwnasWarning

    with warnings.catch_warnings():
        # the commands print these themselves, as one line; the library warns with them
        warnings.simplefilter("ignore", HwnasWarning)
        return args.func(args)


def run() -> None:
    raise SystemExit(main())
