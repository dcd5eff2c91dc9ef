"""The process's environment, checked before a command starts any work.

Variables hwnas or the libraries it drives read are input like any flag: a value those
libraries would choke on deep inside a run (NNCF's extension timeout, torchrun's ranks, an
OpenMP thread count of ten thousand) is one line and exit status 2 up front. And output
survives a terminal that cannot encode it (``PYTHONIOENCODING=ascii``, a C locale): a
path or a name outside its character set is escaped, never a ``UnicodeEncodeError``.
"""

from __future__ import annotations

import os
import sys

from .errors import UserError

# variable -> (lowest, highest) for the integers hwnas and its libraries parse
_INTEGERS = {
    "NNCF_EXTENSION_LOAD_TIMEOUT": (1, 86400),  # NNCF: seconds to build its extensions
    "WORLD_SIZE": (1, 4096), "RANK": (0, 4095), "LOCAL_RANK": (0, 4095),  # torchrun
}


def escaping_streams() -> None:
    """stdout and stderr escape what their encoding cannot write instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing to print on
                pass


def _integer(name: str, lo: int, hi: int) -> None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return
    try:
        v = int(raw.strip())
    except ValueError:
        v = None
    if v is None or not lo <= v <= hi:
        from hwnas_profilers.fileformat import echo

        raise UserError(f"environment variable {name}={echo(raw)} must be an integer from "
                        f"{lo} to {hi}; fix or unset it")


def _omp_threads() -> None:
    from hwnas_profilers.bounds import cores

    raw = os.environ.get("OMP_NUM_THREADS")
    if raw is None or raw.strip() == "":
        return
    hi = max(256, 4 * cores())  # OpenMP accepts any count; ten thousand threads thrash
    first = raw.split(",")[0].strip()  # OpenMP allows a list per nesting level
    if not first.isdigit() or not 1 <= int(first) <= hi:
        from hwnas_profilers.fileformat import echo

        raise UserError(f"environment variable OMP_NUM_THREADS={echo(raw)} must be a thread "
                        f"count from 1 to {hi}; fix or unset it")


def check_environment() -> None:
    """One line, exit 2, for an environment variable that would fail later."""
    from hwnas_profilers.cachedir import check_configured

    for name, (lo, hi) in _INTEGERS.items():
        _integer(name, lo, hi)
    _omp_threads()
    check_configured()  # HWNAS_CACHE: an existing file, or a path under one (/dev/null/x)
