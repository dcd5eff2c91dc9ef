"""The backend registry, filled only from the entry-point group ``hwnas.profilers``.

The built-in backends are declared in ``pyproject.toml`` exactly as a third party would
declare its own, so there is one loading path. Loading an entry point imports only the
backend module, which imports its runtime lazily (in ``check``), so listing backends works
without any runtime installed. Two entry points with one name are an error.
"""

from __future__ import annotations

from importlib import metadata
from typing import Iterable

from .base import Profiler, ProfilerError, Settings

GROUP = "hwnas.profilers"


def _entry_points(group: str) -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=group)


def load_registry(entry_points: Iterable[metadata.EntryPoint] | None = None,
                  group: str = GROUP, noun: str = "profiler backends",
                  error: type[Exception] = ProfilerError) -> dict[str, metadata.EntryPoint]:
    """Name -> entry point of ``group`` (hwnas's emitters use the same loader). A duplicate
    name (two distributions, or two lines) is an error."""
    eps = list(_entry_points(group) if entry_points is None else entry_points)
    reg: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        if ep.name in reg and reg[ep.name].value != ep.value:
            raise error(f"two {noun} are registered as {ep.name!r}: "
                        f"{reg[ep.name].value} and {ep.value}")
        reg[ep.name] = ep
    return dict(sorted(reg.items()))


def available_backends() -> list[str]:
    """Names of every registered backend (whether or not its runtime is installed)."""
    return list(load_registry())


def load_class(name: str, base: type, registry: dict[str, metadata.EntryPoint],
               noun: str = "profiler backend", error: type[Exception] = ProfilerError) -> type:
    """The class registered as ``name``, checked to subclass ``base`` (hwnas's emitters use
    the same path). Unknown names, import failures and foreign classes are one line."""
    if name not in registry:
        known = ", ".join(registry) or "none (is the package installed? pip install -e .)"
        raise error(f"unknown {noun} {name!r}; registered: {known}")
    try:
        cls = registry[name].load()
    except ImportError as exc:
        raise error(f"{noun} {name!r} ({registry[name].value}) cannot be "
                    f"imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise error(f"entry point {name!r} ({registry[name].value}) is not a "
                    f"{base.__name__} subclass")
    return cls


def backend_class(name: str, registry: dict[str, metadata.EntryPoint] | None = None
                  ) -> type[Profiler]:
    return load_class(name, Profiler, load_registry() if registry is None else registry)


def get_profiler(name: str, settings: Settings | None = None) -> Profiler:
    """An instance of backend ``name``; raises MissingRuntime naming the extra if absent."""
    return backend_class(name)(settings or Settings())
