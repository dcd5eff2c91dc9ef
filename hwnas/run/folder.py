"""The run folder of ``hwnas run``: the one place its file names are spelled.

One ``--out`` folder holds the runs of several backends and precisions (one trained
supernet, shared): the trained supernet and its accuracy table under ``train/``, and per
backend and precision a device table, a frontier, baselines, a summary (JSON and CSV), a
report folder and one engine folder per budget. The pipeline writes these paths, the
baselines step and the report read them, and the benchmarks find them, all through
:class:`RunFolder`.

The device table carries the name of the *profiler* that measured it (``torch`` for the
``torch-aoti`` engines), not the engine backend's: a folder built for a backend asks the
emitter registry which profiler that is (:meth:`RunFolder.for_backend`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

# an engine folder's files as the run reads them (the engine builder writes the folder,
# the same layout ``hwnas export`` leaves without a run)
ENGINE_MANIFEST = "manifest.json"
ENGINE_ARCHITECTURE = "arch.json"


def _name_part(value: str, what: str) -> str:
    """``value`` as one part of a file name: no separator, no way out of the folder."""
    if not value or any(c in value for c in "/\\\0") or value in (".", ".."):
        raise UserError(f"{what} {value!r} cannot name a file of a run folder")
    return value


@dataclass(frozen=True)
class RunFolder:
    """The paths of one backend and precision in a run folder ``root``."""

    root: Path
    backend: str
    precision: str
    profiler: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).absolute())
        for value, what in ((self.backend, "backend"), (self.precision, "precision"),
                            (self.profiler, "profiler")):
            _name_part(value, what)

    @classmethod
    def for_backend(cls, root: "str | Path", backend: str, precision: str) -> "RunFolder":
        """The folder of engine backend ``backend``; its device table is named for the
        profiler the backend's emitter measures with (looked up in the emitter registry)."""
        from ..engines.registry import emitter_class

        return cls(Path(root), backend, precision, emitter_class(backend).profiler)

    # ------------------------------------------------------------- shared by all
    @property
    def tag(self) -> str:
        """``{backend}_{precision}``: the suffix of every per-backend file name."""
        return f"{self.backend}_{self.precision}"

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def accuracy_table(self) -> Path:
        from ..train.ponas import TABLE_NAME

        return self.train_dir / TABLE_NAME

    @property
    def checkpoint(self) -> Path:
        from ..train.checkpoint import CHECKPOINT_NAME

        return self.train_dir / CHECKPOINT_NAME

    # ------------------------------------------------- per backend and precision
    @property
    def device_table(self) -> Path:
        return self.root / f"device_table_{self.profiler}_{self.precision}.json"

    @property
    def frontier(self) -> Path:
        return self.root / f"frontier_{self.tag}.json"

    @property
    def baselines(self) -> Path:
        return self.root / f"baselines_{self.tag}.json"

    @property
    def summary(self) -> Path:
        return self.root / f"summary_{self.tag}.json"

    @property
    def summary_csv(self) -> Path:
        return self.root / f"summary_{self.tag}.csv"

    @property
    def report_dir(self) -> Path:
        return self.root / f"report_{self.tag}"

    @property
    def report_html(self) -> Path:
        return self.report_dir / "report.html"

    def engine_dir(self, budget_ms: float) -> Path:
        """The engine folder of one budget."""
        return self.root / f"budget_{budget_ms:g}ms_{self.tag}"

    @staticmethod
    def manifest(engine_dir: Path) -> Path:
        return Path(engine_dir) / ENGINE_MANIFEST

    @staticmethod
    def architecture(engine_dir: Path) -> Path:
        return Path(engine_dir) / ENGINE_ARCHITECTURE

    # ------------------------------------------------------------------ finding
    @classmethod
    def finished(cls, root: "str | Path") -> "list[RunFolder]":
        """The backends and precisions with a summary in ``root`` (a finished run each),
        as each summary records them."""
        from ..fileio import read_json

        found = []
        for p in sorted(Path(root).glob("summary_*.json")):
            d = read_json(p, "run summary")
            found.append(cls.for_backend(root, str(d["backend"]), str(d["precision"])))
        return found
