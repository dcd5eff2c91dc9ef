"""Error types. A ``UserError`` is bad input: the CLI prints its one line and exits 2."""

from __future__ import annotations


#: exit status of a command that built what it was asked for but whose own check failed
#: (an engine's parity against PyTorch not met, an engine still over its budget after the
#: step-downs): the files are written, and a pipeline gating on them must stop. Bad input
#: is 2, a bug 1.
CHECK_FAILED = 3


class HwnasWarning(UserWarning):
    """Something a caller should know that does not stop the work: a device table measured
    on another machine or runtime version, whose figures may not hold here."""


class UserError(Exception):
    """Bad input from the user (file, name, budget, missing runtime). Exit status 2.

    Its message is always one line of bounded length, whatever it quotes (a key with a
    newline in it, a 10,000-character field): the CLI's contract holds for library
    callers too."""

    def __init__(self, message: object = "") -> None:
        from hwnas_profilers.fileformat import one_line

        super().__init__(one_line(str(message), 1000))


class SpaceError(UserError):
    """A search space (built-in name or file) is unknown or inconsistent."""


class ArchitectureError(UserError):
    """An architecture does not fit its space."""


class TableError(UserError):
    """A device or accuracy table is unreadable, foreign, or incomplete."""


class MissingDependency(UserError):
    """An optional runtime is not installed; the message names the extra."""


def require(module: str, extra: str):
    """Import an optional module or raise ``MissingDependency`` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependency(
            f"{module} is not installed ({exc.__class__.__name__}: {exc}); "
            f"install it with: pip install 'hwnas[{extra}]'"
        ) from None
