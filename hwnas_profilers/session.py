"""The old name of :mod:`hwnas_profilers.bundle_run` (profiling runs of block bundles and
models), kept so code that imports ``hwnas_profilers.session`` keeps working."""

from . import bundle_run as _bundle_run


def __getattr__(name: str) -> object:
    return getattr(_bundle_run, name)
