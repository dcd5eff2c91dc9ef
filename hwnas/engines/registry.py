"""The emitter registry, filled only from the entry-point group ``hwnas.emitters``.

The built-in emitters are declared in ``pyproject.toml`` exactly as a third party declares
its own (one loading path, the profilers' loader); a duplicate name is an error.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from .base import Emitter, EngineError

GROUP = "hwnas.emitters"


def load_registry() -> dict[str, metadata.EntryPoint]:
    from hwnas_profilers.registry import load_registry as load

    return load(group=GROUP, noun="engine emitters", error=EngineError)


def available_emitters() -> list[str]:
    """Names of the registered engine backends (entry-point group ``hwnas.emitters``)."""
    return list(load_registry())


def emitter_class(name: str) -> type[Emitter]:
    """The emitter class registered as ``name`` (one line when unknown or not importable)."""
    from hwnas_profilers.registry import load_class

    return load_class(name, Emitter, load_registry(), "engine backend", EngineError)


def get_emitter(name: str, device: str = "cpu", precision: str = "fp32", threads: int = 1,
                **options: Any) -> Emitter:
    """An emitter instance; raises (one line) for an unknown name, a missing runtime, or an
    unsupported device/precision, before any work is done."""
    return emitter_class(name)(device=device, precision=precision, threads=threads,
                               options=options)
