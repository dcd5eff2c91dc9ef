"""profilers: device-side latency measurement of block bundles (numpy + one runtime).

This package never imports torch or hwnas, so it installs on an edge box next to the one
runtime it measures. Backends are found through the entry-point group ``hwnas.profilers``
(the built-ins are declared there too); each imports its runtime only inside itself.

Public API::

    from hwnas_profilers import get_profiler, profile_bundle, measure_model, Settings, Protocol
"""

from importlib import metadata as _metadata

from .base import (MissingRuntime, Profiler, ProfilerError, Runner, Settings, Unsupported,
                   PRECISIONS)
from .protocol import Protocol, Stats, summarize
from .registry import available_backends, get_profiler, load_registry
from .bundle_run import measure_model, profile_bundle

try:  # one version source (hwnas/__init__.py), read from the installed distribution
    __version__ = _metadata.version("hwnas")
except _metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "unknown"

__all__ = [
    "MissingRuntime", "Profiler", "ProfilerError", "Runner", "Settings", "Unsupported",
    "PRECISIONS", "Protocol", "Stats", "summarize", "available_backends", "get_profiler",
    "load_registry", "measure_model", "profile_bundle", "__version__",
]
