"""The main job's results as typed values: one row per budget, and the run's summary.

``summary_{backend}_{precision}.json`` and its CSV are written from these, the command
line prints from them, and a redrawn report reads them back: one encoder and decoder
(``to_json`` / ``from_json``) instead of a dict spelled in each place. The JSON keys and
their order are the file's (the CSV's columns are :data:`CSV_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

# the CSV beside the summary: these fields of each row, in this order
CSV_COLUMNS = ("budget_ms", "choices", "predicted_ms", "predicted_upper_ms", "statistic",
               "measured_ms", "measured_spread_ms", "prediction_error", "meets_budget",
               "steps_down", "predicted_accuracy", "val_accuracy", "test_accuracy",
               "parity_max_abs_diff", "top1_agreement", "engine")


@dataclass(frozen=True)
class RunResult:
    """One budget: the network chosen for it, its engine, and how the engine measured."""

    budget_ms: float
    choices: list[str]
    selected_within_ms: float | None = None
    meets_budget: bool | None = None
    first_choices: list[str] = field(default_factory=list)
    steps_down: int = 0
    score: float | None = None
    predicted_ms: float | None = None
    predicted_upper_ms: float | None = None
    statistic: str | None = None
    measured_ms: float | None = None
    measured_spread_ms: float | None = None
    prediction_error: float | None = None
    host_drift: float | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_images: int | None = None
    parity_max_abs_diff: float | None = None
    top1_agreement: float | None = None
    parity_ok: bool = False
    engine: str | None = None
    manifest: str | None = None
    predicted_accuracy: float | None = None

    @classmethod
    def of_engine(cls, budget_ms: float, arch: Any, manifest: Any, selected_within_ms: float,
                  manifest_path: str, predicted_accuracy: float | None) -> "RunResult":
        """The row of the engine ``manifest`` (an :class:`~hwnas.engines.manifest.
        EngineManifest`) built from ``arch`` for ``budget_ms``."""
        from ..engines.budget import first_choices, tried

        lat, accs, parity = manifest.latency, manifest.accuracy or {}, manifest.parity
        meas = manifest.measured_ms
        return cls(budget_ms=budget_ms, choices=list(arch.choices),
                   selected_within_ms=selected_within_ms,
                   meets_budget=None if meas is None else bool(meas <= budget_ms),
                   first_choices=first_choices(manifest), steps_down=len(tried(manifest)),
                   score=arch.score, predicted_ms=lat.get("predicted_ms"),
                   predicted_upper_ms=lat.get("predicted_upper_ms"),
                   statistic=lat.get("measured_statistic"), measured_ms=lat.get("measured_ms"),
                   measured_spread_ms=lat.get("measured_spread_ms"),
                   prediction_error=lat.get("prediction_error"),
                   host_drift=lat.get("host_drift"), val_accuracy=accs.get("val_engine"),
                   test_accuracy=accs.get("test_engine"), test_images=accs.get("test_images"),
                   parity_max_abs_diff=parity["max_abs_diff"],
                   top1_agreement=parity["top1_agreement"], parity_ok=bool(parity.get("ok")),
                   engine=manifest.engine_path, manifest=manifest_path,
                   predicted_accuracy=predicted_accuracy)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RunResult":
        own = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in own})

    def csv_row(self) -> list[Any]:
        d = self.to_json()
        return [",".join(d[c]) if c == "choices" else d[c] for c in CSV_COLUMNS]


@dataclass(frozen=True)
class RunSummary:
    """A finished run of one backend and precision (``summary_{tag}.json``)."""

    space: str
    space_id: str
    data: str
    backend: str
    precision: str
    results: list[RunResult]
    statistic: str | None = None
    device_table: str | None = None
    budget_margin: dict[str, Any] | None = None   # {"value": share, "from": where}
    data_split: dict[str, Any] | None = None
    frontier_points: int | None = None
    report: str | None = None                     # the report page, once drawn
    # the device table refitted on the run's frontier (status, each group's held-out
    # error) and the error of every network the run measured, by group ("observed")
    calibration: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The file's mapping, keys in the file's order (``calibration`` only where the run
        recorded one, ``report`` only once drawn)."""
        d = {"space": self.space, "space_id": self.space_id, "data": self.data,
             "backend": self.backend, "precision": self.precision,
             "statistic": self.statistic, "device_table": self.device_table,
             "budget_margin": self.budget_margin, "data_split": self.data_split,
             "frontier_points": self.frontier_points,
             "results": [r.to_json() for r in self.results]}
        if self.calibration is not None:
            d["calibration"] = self.calibration
        if self.report is not None:
            d["report"] = self.report
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RunSummary":
        own = {f.name for f in fields(cls)} - {"results"}
        return cls(**{k: v for k, v in d.items() if k in own},
                   results=[RunResult.from_json(r) for r in d.get("results") or []])
