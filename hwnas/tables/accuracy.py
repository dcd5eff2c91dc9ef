"""Accuracy tables (PONAS): a score per searchable layer and candidate, with provenance.

JSON (canonical, carries the space spec so a shrunk or custom space travels with it)::

    {"schema": 1, "kind": "hwnas.accuracy_table", "space": NAME, "space_id": ID,
     "space_spec": {...}, "provenance": {...},
     "layers": [{"k3e3": 0.91, "k3e6": 0.93, ...}, ...]}

CSV (to bring a table made elsewhere): header ``layer,choice,score``; layer counted from 0
over the searchable layers, choice in the compact notation. The CSV carries no space,
so reading it needs the space it is for.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas_profilers.fileformat import KINDS, echo, number, one_line

from ..errors import TableError, UserError
from ..fileio import check_header, read_json, read_text, write_json_atomic, write_text_atomic
from ..spaces import SearchSpace, find_space_by_id, load_space, space_from_dict

KIND = "hwnas.accuracy_table"
ACCURACY_SCHEMA = KINDS[KIND]


@dataclass(frozen=True)
class AccuracyTable:
    space: SearchSpace
    scores: tuple[tuple[tuple[str, float], ...], ...]  # per layer: (choice, score) pairs
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.scores) != len(self.space.layers):
            raise TableError(f"accuracy table has {len(self.scores)} layers, space "
                             f"{self.space.name} has {len(self.space.layers)}")
        for i, (row, layer) in enumerate(zip(self.scores, self.space.layers)):
            got = {c for c, _ in row}
            for c, v in row:
                if c not in layer.choices:
                    raise TableError(f"accuracy table layer {i}: {echo(c)} is not a candidate "
                                     f"of space {self.space.name}")
                if not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise TableError(f"accuracy table layer {i} {c}: score must be finite, got {v!r}")
            lacking = [c for c in layer.choices if c not in got]
            if lacking:
                raise TableError(f"accuracy table layer {i} has no score for {', '.join(lacking)}")

    @classmethod
    def from_rows(cls, space: SearchSpace, rows: Sequence[Mapping[str, float]],
                  provenance: Mapping[str, Any] | None = None) -> "AccuracyTable":
        """A table from one mapping per layer, choice to score."""
        if len(rows) != len(space.layers):
            raise TableError(f"accuracy table has {len(rows)} layers, space {space.name} has "
                             f"{len(space.layers)}")

        def val(i: int, c: Any, v: Any) -> tuple[str, float]:
            if not isinstance(c, str):
                raise TableError(f"accuracy table layer {i}: choice {echo(c)} is not a name")
            return c, number(v, f"accuracy table layer {i} {c}: score", -1e6, 1e6,
                             error=TableError)

        scores = tuple(tuple(val(i, c, r[c]) for c in layer.choices if c in r)
                       + tuple(val(i, c, v) for c, v in r.items() if c not in layer.choices)
                       for i, (r, layer) in enumerate(zip(rows, space.layers)))
        if provenance is not None and not isinstance(provenance, Mapping):
            raise TableError("accuracy table: 'provenance' must be a mapping")
        return cls(space, scores, dict(provenance or {}))

    # ------------------------------------------------------------- lookups
    def score(self, layer: int, choice: str) -> float:
        """The score of ``choice`` at ``layer``."""
        return dict(self.scores[layer])[choice]

    def matrix(self) -> list[np.ndarray]:
        """Per layer, scores aligned with ``space.layers[l].choices``."""
        return [np.asarray([dict(row)[c] for c in layer.choices], dtype=float)
                for row, layer in zip(self.scores, self.space.layers)]

    def relative_loss(self) -> list[dict[str, float]]:
        """PONAS's relative accuracy loss: (best - score) / best, per layer."""
        out = []
        for row in self.scores:
            best = max(v for _, v in row)
            out.append({c: (best - v) / best if best else 0.0 for c, v in row})
        return out

    def total(self, choices: Sequence[str]) -> float:
        """The summed score of one choice per layer."""
        return float(sum(self.score(i, c) for i, c in enumerate(choices)))

    # ------------------------------------------------------------ encoding
    def to_dict(self) -> dict[str, Any]:
        """The JSON form (header, space, provenance, scores)."""
        return {
            "schema": ACCURACY_SCHEMA, "kind": KIND, "space": self.space.name,
            "space_id": self.space.id, "space_spec": self.space.to_dict(),
            "provenance": dict(self.provenance),
            "layers": [dict(row) for row in self.scores],
            "relative_loss": self.relative_loss(),
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "accuracy table") -> "AccuracyTable":
        """Read the JSON form, checked (bounded, typed, its space resolved)."""
        check_header(d, KIND, ACCURACY_SCHEMA, source, "accuracy table")
        if d.get("space_spec") is not None and not isinstance(d["space_spec"], Mapping):
            raise TableError(f"{source}: 'space_spec' must be a mapping (a space), got "
                             f"{echo(d['space_spec'])}")
        try:
            if isinstance(d.get("space_spec"), Mapping):
                space = space_from_dict(d["space_spec"])
            else:
                space = find_space_by_id(str(d.get("space_id"))) or load_space(str(d.get("space")))
        except UserError as exc:
            raise TableError(f"{source}: {exc}") from None
        if d.get("space_id") and d["space_id"] != space.id:
            raise TableError(f"{source}: space_id {d['space_id']} does not match its space "
                             f"(content id {space.id})")
        layers = d.get("layers")
        if not isinstance(layers, list) or not all(isinstance(r, Mapping) for r in layers):
            raise TableError(f"{source}: 'layers' must be a list of {{choice: score}} mappings")
        try:
            return cls.from_rows(space, layers, d.get("provenance") or {})
        except (TypeError, ValueError) as exc:
            raise TableError(f"{source}: {exc}") from None

    def to_csv(self) -> str:
        """The scores as CSV rows ``layer,choice,score``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["layer", "choice", "score"])
        for i, row in enumerate(self.scores):
            for c, v in row:
                w.writerow([i, c, repr(float(v))])
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str, space: SearchSpace, source: str = "accuracy CSV"
                 ) -> "AccuracyTable":
        """Read CSV rows ``layer,choice,score`` of ``space`` (every candidate once)."""
        try:
            return cls._from_csv(text, space, source)
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            raise TableError(f"{source}: not a readable CSV table ({one_line(str(exc), 200)})") \
                from None

    @classmethod
    def _from_csv(cls, text: str, space: SearchSpace, source: str) -> "AccuracyTable":
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != ["layer", "choice", "score"]:
            raise TableError(f"{source}: first line must be the header 'layer,choice,score'")
        rows: list[dict[str, float]] = [{} for _ in space.layers]
        for lineno, rec in enumerate(reader, start=2):
            if not rec or all(not f.strip() for f in rec):
                continue
            if len(rec) != 3:
                raise TableError(f"{source} line {lineno}: expected 3 fields, got {len(rec)}")
            try:
                layer, choice, score = int(rec[0]), rec[1].strip(), float(rec[2])
            except ValueError:
                raise TableError(f"{source} line {lineno}: cannot read {echo(','.join(rec))}") \
                    from None
            if not math.isfinite(score) or abs(score) > 1e6:
                raise TableError(f"{source} line {lineno}: score must be a finite number from "
                                 f"-1e6 to 1e6, got {echo(rec[2])}")
            if not 0 <= layer < len(space.layers):
                raise TableError(f"{source} line {lineno}: layer {layer} is out of range 0.."
                                 f"{len(space.layers) - 1} for space {space.name}")
            if choice in rows[layer]:
                raise TableError(f"{source} line {lineno}: layer {layer} {choice} given twice")
            rows[layer][choice] = score
        return cls.from_rows(space, rows, {"source": source, "format": "csv"})

    def save(self, path: "str | Path") -> Path:
        """Write the JSON form atomically; returns the path."""
        path = Path(path)
        if path.suffix.lower() == ".csv":
            return write_text_atomic(path, self.to_csv())
        return write_json_atomic(path, self.to_dict())


def load_accuracy_table(path: "str | Path", space: "str | SearchSpace | None" = None
                        ) -> AccuracyTable:
    """JSON table, or CSV ``layer,choice,score`` (then ``space`` says which space)."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        if space is None:
            raise TableError(f"{p}: a CSV accuracy table names no space; say which space it is "
                             "for (a built-in name such as tiny-32, or a space file)")
        text = read_text(p, "accuracy table", errors="replace")
        return AccuracyTable.from_csv(text, load_space(space), str(p))
    table = AccuracyTable.from_dict(read_json(p, "accuracy table"), f"accuracy table {p}")
    if space is not None and load_space(space).id != table.space.id:
        sp = load_space(space)
        raise TableError(f"accuracy table {p} is for space {table.space.name} (id "
                         f"{table.space.id}), not {sp.name} (id {sp.id})")
    return table
