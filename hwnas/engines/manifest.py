"""An engine's manifest as a typed value: one encoder and decoder for ``manifest.json``.

The builder fills it, the run's step-down and summary read it, the CLI prints it: each
through the fields here rather than by string key. Its sections (``engine``, ``latency``,
``parity`` and the rest) stay mappings, as the published schema
(``hwnas/schemas/engine_manifest.schema.json``) describes them; the fields read in more
than one place have a property. Keys a run adds beside the builder's own (``budget_ms``,
the tables and supernet it used, ``step_down``, ``measured_with``) are kept in ``extra``,
in order, so a file read and written again keeps every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from hwnas_profilers.fileformat import KINDS

MANIFEST_KIND = "hwnas.engine_manifest"
MANIFEST_SCHEMA = KINDS[MANIFEST_KIND]
# the builder's keys before and after the run's own (``extra``), in the file's order
_HEAD = ("architecture", "space", "space_id", "engine", "runtime", "sources", "quantization",
         "finetune_steps", "parity", "accuracy", "latency", "device", "preprocessing",
         "request")
_TAIL = ("tool", "date")


@dataclass(frozen=True)
class EngineManifest:
    """What an engine file is and how it measured (see the module docstring)."""

    architecture: dict[str, Any]
    engine: dict[str, Any]
    latency: dict[str, Any]
    space: str | None = None
    space_id: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    finetune_steps: int = 0
    parity: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] | None = None
    request: dict[str, Any] = field(default_factory=dict)
    tool: str = ""
    date: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # --------------------------------------------------------------- encoding
    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` mapping (kind and schema first, the run's keys between
        the builder's request and its tool and date)."""
        d: dict[str, Any] = {"kind": MANIFEST_KIND, "schema": MANIFEST_SCHEMA}
        d.update({k: getattr(self, k) for k in _HEAD})
        d.update(self.extra)
        d.update({k: getattr(self, k) for k in _TAIL})
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "EngineManifest":
        """Decode a manifest mapping (its header is checked by
        :func:`hwnas.engines.build.read_manifest`); unknown keys go to ``extra``."""
        own = {f.name for f in fields(cls)} - {"extra"}
        known = {k: d[k] for k in own if k in d}
        for k, empty in (("architecture", {}), ("engine", {}), ("latency", {})):
            known.setdefault(k, empty)
        extra = {k: v for k, v in d.items() if k not in own and k not in ("kind", "schema")}
        return cls(**known, extra=extra)

    @classmethod
    def of(cls, m: "EngineManifest | Mapping[str, Any]") -> "EngineManifest":
        """``m`` as a manifest (a mapping is decoded)."""
        return m if isinstance(m, EngineManifest) else cls.from_json(m)

    def with_run(self, **keys: Any) -> "EngineManifest":
        """A copy with the run's keys ``keys`` added to (or replacing them in) ``extra``."""
        return replace(self, extra={**self.extra, **keys})

    # ------------------------------------------------------------------ reads
    @property
    def choices(self) -> list[str]:
        return list(self.architecture.get("choices") or [])

    @property
    def engine_path(self) -> str:
        return str(self.engine.get("path") or "")

    @property
    def measured_ms(self) -> float | None:
        v = self.latency.get("measured_ms")
        return float(v) if isinstance(v, (int, float)) else None

    @property
    def predicted_ms(self) -> float | None:
        v = self.latency.get("predicted_ms")
        return float(v) if isinstance(v, (int, float)) else None

    @property
    def step_down(self) -> dict[str, Any] | None:
        rec = self.extra.get("step_down")
        return rec if isinstance(rec, dict) else None
