"""Device tables: measured latency per block key, with provenance and an end-to-end model.

End-to-end model (one place, used by ``predict`` and by the solver's cost matrix)::

    net(b)       = max(figure(b) - overhead_ms, 0)        # isolated figure less per-call cost
    additive(A)  = overhead_ms + sum(net(b) for b in blocks(A))
    predicted(A) = scale * additive(A) + offset_ms        # calibration fitted on whole nets

Both maps are monotone and linear in the per-block terms, so the solver can work on the
per-layer terms ``scale * net(b)`` plus one constant without losing exactness.

``figure`` is the statistic the table was measured to predict (``meta.protocol.figure``:
``floor`` since protocol v2, ``median`` before; see ``hwnas_profilers.protocol``). A table of
protocol v2 also carries ``p90`` per block and an ``upper`` calibration: the same model on
p90 figures gives the "upper" prediction, what a contended host shows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwnas_profilers.fileformat import KINDS, echo, number, one_line

from ..arch import Architecture
from ..blocks import Block
from ..errors import HwnasWarning, TableError, UserError
from ..fileio import check_header, read_json, write_json_atomic
from ..spaces import SearchSpace

KIND = "hwnas.device_table"
DEVICE_SCHEMA = KINDS[KIND]
MIN_MARGIN = 0.03  # the least share of a budget kept free for prediction error
NON_BLOCK_ROWS = ("overhead (per call)", "calibration offset")  # a prediction's last rows


@dataclass(frozen=True)
class LatencyStat:
    """Robust statistics of one block's latency; ``status`` is ``ok`` or ``failed``."""

    median_ms: float | None
    spread_ms: float = 0.0  # interquartile range of the samples
    n: int = 0
    status: str = "ok"
    reason: str = ""
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        """Whether the block was measured (not failed)."""
        return self.status == "ok" and self.median_ms is not None

    def value(self, field: str) -> float | None:
        """One statistic by its entry field (``median_ms``, ``floor_ms``, ``p90_ms``, ...)."""
        if field == "median_ms":
            return self.median_ms
        v = dict(self.extra).get(field)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        if not self.ok:
            return {"status": "failed", "reason": self.reason}
        d: dict[str, Any] = {"median_ms": self.median_ms, "spread_ms": self.spread_ms,
                             "n": self.n, "status": "ok"}
        d.update(dict(self.extra))
        return d

    @classmethod
    def from_dict(cls, key: str, d: Any) -> "LatencyStat":
        """Read the JSON form, checked (bounded, typed)."""
        if not isinstance(d, Mapping):
            raise TableError(f"device table entry {key}: expected a mapping")
        status = d.get("status", "ok")
        if status == "failed":
            return cls(None, status="failed", reason=one_line(str(d.get("reason", "unknown")), 300))
        if status != "ok":
            raise TableError(f"device table entry {key}: unknown status {echo(status)}")
        where = f"device table entry {key}:"
        med = number(d.get("median_ms"), f"{where} median_ms", 0.0, 1e7, error=TableError)
        spread = number(d.get("spread_ms", 0.0) or 0.0, f"{where} spread_ms", 0.0, 1e7,
                        error=TableError)
        n = number(d.get("n", 0) or 0, f"{where} n", 0, 1e12, integer=True, error=TableError)
        extra = tuple(sorted((k, v) for k, v in d.items()
                             if k not in ("median_ms", "spread_ms", "n", "status")))
        for k, v in extra:  # every statistic a table may predict or report is a number
            if k.endswith("_ms") or k in ("ref_ratio", "span_s"):
                number(v, f"{where} {k}", 0.0, 1e7, error=TableError)
        return cls(med, spread, int(n), "ok", "", extra)


@dataclass(frozen=True)
class Calibration:
    scale: float = 1.0
    offset_ms: float = 0.0
    fitted_on: int = 0
    report: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"scale": self.scale, "offset_ms": self.offset_ms, "fitted_on": self.fitted_on,
                **dict(self.report)}

    @classmethod
    def from_dict(cls, d: Any) -> "Calibration":
        """Read the JSON form, checked (bounded, typed)."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise TableError("device table calibration must be a mapping")
        where = "device table calibration:"
        scale = number(d.get("scale", 1.0), f"{where} scale", 1e-9, 1e6, error=TableError)
        offset = number(d.get("offset_ms", 0.0), f"{where} offset_ms", -1e7, 1e7, error=TableError)
        fitted = number(d.get("fitted_on", 0) or 0, f"{where} fitted_on", 0, 1e9, integer=True,
                        error=TableError)
        report = tuple(sorted((k, v) for k, v in d.items()
                              if k not in ("scale", "offset_ms", "fitted_on")))
        return cls(scale, offset, int(fitted), report)


@dataclass(frozen=True)
class Prediction:
    latency_ms: float
    additive_ms: float
    layers: tuple[tuple[str, float], ...]  # (block key, calibrated contribution in ms)
    figure: str = "median"
    upper_ms: float | None = None  # calibrated p90 model, where the table has one

    @property
    def block_rows(self) -> tuple[tuple[str, float], ...]:
        """The rows of ``layers`` that are blocks (without the overhead and offset rows)."""
        return tuple(r for r in self.layers if r[0] not in NON_BLOCK_ROWS)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; its ``breakdown`` rows (blocks, then the per-call overhead and the
        calibration's offset) sum to ``latency_ms``."""
        return {"latency_ms": self.latency_ms, "figure": self.figure, "upper_ms": self.upper_ms,
                "additive_ms": self.additive_ms,
                "breakdown": [{"block": k, "ms": v} for k, v in self.layers]}


@dataclass(frozen=True)
class DeviceTable:
    """Latency lookup table of one device, backend and precision."""

    meta: Mapping[str, Any]
    entries: Mapping[str, LatencyStat]
    space: str = ""
    space_id: str = ""
    overhead_ms: float = 0.0
    calibration: Calibration = Calibration()

    # ------------------------------------------------------------- lookups
    @property
    def figure(self) -> str:
        """The statistic the entries predict (``floor``, ``median``, ...)."""
        from hwnas_profilers.protocol import table_figure

        return table_figure(self.meta)

    @property
    def figure_field(self) -> str:
        """The entry field of :attr:`figure` (``floor_ms``, ``median_ms``, ...)."""
        from hwnas_profilers.protocol import FIGURES

        return FIGURES[self.figure]

    def portability_warning(self, name: str) -> str | None:
        """One line when this machine's fingerprint differs from the table's (else None)."""
        from hwnas_profilers.fingerprint import differences, runtime_difference

        dev = self.meta.get("device")
        diff = differences(dict(dev)) if isinstance(dev, Mapping) else []
        rt = runtime_difference(self.meta.get("runtime"), self.meta.get("runtime_version"))
        diff += [rt] if rt else []
        if not diff:
            return None
        more = f" (+{len(diff) - 3} more)" if len(diff) > 3 else ""
        return (f"warning: device table {name} was measured on another machine or runtime "
                f"({'; '.join(diff[:3])}{more}); its figures may not hold here: "
                f"hwnas tables recalibrate {name} --out NEW.json (seconds), or re-profile")

    def describe_source(self) -> str:
        """Backend, precision and device in a few words, for messages."""
        m = self.meta
        return (f"{m.get('backend', '?')} {m.get('precision', '?')} on "
                f"{(m.get('device') or {}).get('name', '?') if isinstance(m.get('device'), Mapping) else m.get('device', '?')}")

    def _missing(self, key: str, space: SearchSpace | None = None, count: int = 1) -> TableError:
        target = space.name if space is not None else (self.space or "SPACE")
        if space is not None and self.space_id and self.space_id != space.id:
            # not a gap in a table of this space: a table of another one
            total = len(space.unique_blocks())
            return TableError(
                f"device table ({self.describe_source()}) is for space {self.space or '?'} "
                f"(id {self.space_id}), not {target} (id {space.id}): it lacks {count} of the "
                f"{total} blocks of {target} (first: {key}); use a table measured for {target}")
        if str(self.meta.get("source", "")).startswith("imported"):
            how = (f"this table was imported from {self.meta.get('source_file', 'a foreign file')}; "
                   f"measure space {target} on your device with: hwnas profile --space {target} "
                   "--backend BACKEND --out TABLE")
        else:
            how = (f"profile it with: hwnas profile --space {target} --backend "
                   f"{self.meta.get('backend', 'BACKEND')} --resume --out TABLE")
        return TableError(f"device table ({self.describe_source()}, space {self.space or '?'}) "
                          f"has no latency for block {key}; {how}")

    def net_ms(self, key: str) -> float:
        """Per-block term of the additive model; raises for a missing or failed block."""
        stat = self.entries.get(key)
        if stat is None:
            raise self._missing(key)
        if not stat.ok:
            raise TableError(f"block {key} failed on this backend ({stat.reason}); "
                             "its latency is unknown, not zero")
        v = stat.value(self.figure_field)
        if v is None:
            raise TableError(f"block {key} has no {self.figure_field} although the table "
                             f"predicts the {self.figure}; re-profile it")
        return max(v - self.overhead_ms, 0.0)

    def missing(self, space: SearchSpace) -> list[str]:
        """Keys of the space's blocks that the table lacks (empty when it serves the space)."""
        return [b.key() for b in space.unique_blocks() if b.key() not in self.entries]

    # ---------------------------------------------------------- prediction
    def predict(self, arch: "Architecture | SearchSpace",
                space: "SearchSpace | Architecture | None" = None,
                statistic: "str | None" = None) -> Prediction:
        """The calibrated latency of ``arch`` in the table's statistic (:attr:`figure`), or
        in ``statistic`` (``floor``, ``median``, ``p90``: see :meth:`for_statistic`).

        ``table.predict(arch)`` finds a built-in space by the architecture's space id; pass
        ``space`` for a custom one. (The older order ``predict(space, arch)`` still works.)
        """
        if statistic is not None and statistic != self.figure:
            return self.for_statistic(statistic).predict(arch, space)
        if isinstance(arch, SearchSpace):  # predict(space, arch)
            arch, space = space, arch  # type: ignore[assignment]
        if not isinstance(arch, Architecture):
            raise TypeError(f"predict takes an Architecture, got {type(arch).__name__}")
        sp = space if isinstance(space, SearchSpace) else arch.space()
        blocks = arch.blocks(sp)
        missing = [b.key() for b in blocks if b.key() not in self.entries]
        if missing:
            raise self._missing(missing[0], sp)
        nets = [(b.key(), self.net_ms(b.key())) for b in blocks]
        additive = self.overhead_ms + sum(v for _, v in nets)
        cal = self.calibration
        rows = [(k, cal.scale * v) for k, v in nets]
        rows += list(zip(NON_BLOCK_ROWS, (cal.scale * self.overhead_ms, cal.offset_ms)))
        return Prediction(cal.scale * additive + cal.offset_ms, additive, tuple(rows),
                          self.figure, self._upper([b.key() for b in blocks]))

    def margin(self) -> tuple[float, str]:
        """The share of a budget to keep free for prediction error, and where it came from:
        the table's worst held-out calibration error (``loo_max_abs_err_pct``), at least
        3%. ``hwnas run`` chooses each network within ``budget / (1 + margin)``; use it as
        ``frontier.best(budget, margin=table.margin()[0])``."""
        worst = dict(self.calibration.report).get("loo_max_abs_err_pct")
        if not isinstance(worst, (int, float)) or not math.isfinite(float(worst)):
            return MIN_MARGIN, "default (the table has no held-out calibration error)"
        return max(MIN_MARGIN, float(worst) / 100.0), \
            "the device table's worst held-out calibration error (loo_max_abs_err_pct)"

    def _upper(self, keys: list[str]) -> float | None:
        """The calibrated p90 model of the same blocks (None: the table has none)."""
        up = self.upper_line()
        add = self.upper_additive(keys)
        return None if up is None or add is None else up[0] * add + up[1]

    def upper_line(self) -> tuple[float, float, float] | None:
        """(scale, offset_ms, overhead_ms) of the p90 model, if the table has one."""
        return self.line("p90")

    def line(self, statistic: str) -> tuple[float, float, float] | None:
        """(scale, offset_ms, overhead_ms) of the calibrated model of ``statistic``
        (``floor``, ``median``, ``p90``); None when the table has no line for it."""
        if statistic == self.figure:
            return self.calibration.scale, self.calibration.offset_ms, self.overhead_ms
        d = self.line_record(statistic)
        if d is None:
            return None
        try:
            vals = float(d["scale"]), float(d["offset_ms"]), float(d["overhead_ms"])
        except (KeyError, TypeError, ValueError):
            return None
        return vals if all(math.isfinite(v) for v in vals) and vals[0] > 0 else None

    def line_record(self, statistic: str) -> Mapping[str, Any] | None:
        """The stored record of ``statistic``'s line (its fit and held-out error): the
        table's own calibration for its figure, ``calibration.lines``, or for the p90 the
        older ``upper`` record; None when the table has none."""
        rep = dict(self.calibration.report)
        if statistic == self.figure:
            return {**rep, "fitted_on": self.calibration.fitted_on}
        lines = rep["lines"] if isinstance(rep.get("lines"), Mapping) else {}
        d = lines.get(statistic) or (rep.get("upper") if statistic == "p90" else None)
        return d if isinstance(d, Mapping) else None

    def error_groups(self) -> list[dict[str, Any]]:
        """The prediction error by group of whole networks, each row saying how it was
        obtained: the random and frontier networks the line was fitted on
        (``calibration.groups``: held out, or in sample where an older fit recorded no
        held-out error), then the networks runs measured and recorded as observed, not
        fitted (``meta.observed``: engine files, chosen networks, baselines)."""
        keys = ("nets", "within_5pct", "within_10pct", "median_abs_err_pct", "max_abs_err_pct")
        rows: list[dict[str, Any]] = []
        groups = dict(self.calibration.report).get("groups")
        for g, e in (groups.items() if isinstance(groups, Mapping) else ()):
            rep = e.get("held_out") or e.get("after") if isinstance(e, Mapping) else None
            if isinstance(rep, Mapping):
                how = "fitted on, held out" if e.get("held_out") else "fitted on, in sample"
                rows.append({"group": g, "basis": how, "nets": e.get("nets"),
                             **{k: rep.get(k) for k in keys[1:]}})
        observed = self.meta.get("observed")
        for src, rec in (observed.items() if isinstance(observed, Mapping) else ()):
            if not isinstance(rec, Mapping) or not isinstance(rec.get("groups"), Mapping):
                continue
            for g, rep in rec["groups"].items():
                if isinstance(rep, Mapping):
                    rows.append({"group": g, "basis": f"observed by {rec.get('by', '?')} "
                                 f"{src} ({rec.get('statistic', '?')}), not fitted",
                                 **{k: rep.get(k) for k in keys}})
        return rows

    def statistics(self) -> list[str]:
        """The statistics this table predicts: its own first, then those with a line."""
        return [s for s in dict.fromkeys((self.figure, "floor", "median", "p90"))
                if self.line(s) is not None]

    def for_statistic(self, statistic: "str | None") -> "DeviceTable":
        """The same table predicting ``statistic`` (its per-block figures of that statistic
        and that statistic's own calibration line); the solver and ``predict`` then work in
        it. Raises when the table has no calibrated line for it."""
        if statistic is None or statistic == self.figure:
            return self
        line = self.line(statistic)
        if line is None:
            have = ", ".join(self.statistics())
            raise TableError(f"device table ({self.describe_source()}) has no calibrated "
                             f"{statistic} line (it predicts: {have}); a table profiled with "
                             "this version of hwnas has floor, median and p90")
        src = dict(self.line_record(statistic) or {})
        meta = dict(self.meta)
        meta["protocol"] = {**dict(meta.get("protocol") or {}), "figure": statistic}
        meta["view"] = f"the {statistic} of a table that predicts the {self.figure}"
        cal = Calibration(line[0], line[1], int(src.get("fitted_on") or 0),
                          tuple(sorted((k, v) for k, v in src.items()
                                       if k not in ("scale", "offset_ms", "overhead_ms"))))
        return replace(self, meta=meta, overhead_ms=line[2], calibration=cal)

    def upper_additive(self, keys: list[str]) -> float | None:
        """The p90 additive figure of these blocks (None without p90 figures)."""
        line = self.upper_line()
        vals = [self.entries[k].value("p90_ms") if k in self.entries else None for k in keys]
        if line is None or any(v is None for v in vals):
            return None
        over = line[2]
        return over + sum(max(float(v or 0.0) - over, 0.0) for v in vals)

    def layer_costs(self, space: SearchSpace) -> tuple[float, list[np.ndarray]]:
        """(constant ms, per layer the ms of each candidate) so that
        ``predicted = constant + sum(costs[l][i_l])``. A failed candidate costs ``inf``
        (never chosen); a candidate missing from the table is an error."""
        missing = self.missing(space)
        if missing:
            raise self._missing(missing[0], space, len(missing))
        cal = self.calibration
        fixed = sum(self.net_ms(b.key()) for b in space.fixed_blocks())
        const = cal.scale * (self.overhead_ms + fixed) + cal.offset_ms
        costs = []
        for layer in space.layers:
            row = [cal.scale * self.net_ms(b.key()) if self.entries[b.key()].ok else math.inf
                   for b in layer.candidates]
            costs.append(np.asarray(row, dtype=float))
        return const, costs

    def fastest_ms(self, space: SearchSpace) -> float:
        """The predicted latency of the space's fastest network (each layer's fastest
        candidate): no budget below it can be met on this table's machine."""
        const, costs = self.layer_costs(space)
        return const + sum(float(c.min()) for c in costs)

    # ------------------------------------------------------------ encoding
    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "schema": DEVICE_SCHEMA, "kind": KIND, "space": self.space, "space_id": self.space_id,
            "meta": dict(self.meta), "overhead_ms": self.overhead_ms,
            "calibration": self.calibration.to_dict(),
            "entries": {k: self.entries[k].to_dict() for k in sorted(self.entries)},
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "device table") -> "DeviceTable":
        """Read the JSON form, checked (bounded, typed)."""
        check_header(d, KIND, DEVICE_SCHEMA, source, "device table")
        raw = d.get("entries")
        if not isinstance(raw, Mapping):
            raise TableError(f"{source}: 'entries' must be a mapping of block keys")
        entries = {}
        for key, val in raw.items():
            try:
                Block.from_key(key)  # refuses foreign or malformed keys
            except UserError as exc:
                raise TableError(f"{source}: {exc}") from None
            entries[key] = LatencyStat.from_dict(key, val)
        over = number(d.get("overhead_ms", 0.0), f"{source}: overhead_ms", 0.0, 1e7,
                      error=TableError)
        meta = d.get("meta", {})
        if not isinstance(meta, Mapping):
            raise TableError(f"{source}: 'meta' must be a mapping")
        for k in ("protocol", "reference", "networks"):
            if meta.get(k) is not None and not isinstance(meta[k], Mapping):
                raise TableError(f"{source}: meta {k!r} must be a mapping, got {echo(meta[k])}")
        if not isinstance(meta.get("device", ""), (Mapping, str)):  # a fingerprint, or a name
            raise TableError(f"{source}: meta 'device' must be a mapping or a name, got "
                             f"{echo(meta['device'])}")
        from hwnas_profilers.protocol import FIGURES

        fig = (meta.get("protocol") or {}).get("figure", "median")
        if fig not in FIGURES:
            raise TableError(f"{source}: meta protocol figure {echo(fig)} is not a statistic "
                             f"hwnas knows ({', '.join(FIGURES)})")
        for k in ("space", "space_id"):
            if not isinstance(d.get(k, ""), str) or len(d.get(k, "")) > 200:
                raise TableError(f"{source}: {k!r} must be a short string, got {echo(d.get(k))}")
        t = cls(dict(meta), entries, str(d.get("space", "")), str(d.get("space_id", "")),
                float(over), Calibration.from_dict(d.get("calibration")))
        field = t.figure_field
        for key, st in entries.items():
            v = st.value(field)
            if st.ok and (v is None or not math.isfinite(v) or v < 0):
                raise TableError(f"{source}: entry {key} has no valid {field} although the "
                                 f"table predicts the {t.figure}")
        return t

    def save(self, path: "str | Path") -> Path:
        """Write the JSON form atomically; returns the path."""
        return write_json_atomic(path, self.to_dict())

    def with_entries(self, updates: Mapping[str, LatencyStat]) -> "DeviceTable":
        """The same table with these entries added or replaced."""
        merged = dict(self.entries)
        merged.update(updates)
        return replace(self, entries=merged)


def load_device_table(path: "str | Path", check_machine: bool = True) -> DeviceTable:
    """Read a device table file: a path, or the name of a table shipped in ``hwnas/device_tables``.

    With ``check_machine`` a table measured on another machine or runtime version gives a
    :class:`~hwnas.errors.HwnasWarning` (``warnings.warn``): its figures may not hold here.
    """
    p = Path(path)
    if not p.exists():
        shipped = shipped_table_path(str(path))
        if shipped is not None:
            p = shipped
    d = read_json(p, "device table")
    try:
        table = DeviceTable.from_dict(d, f"device table {p}")
    except TableError as exc:
        msg = str(exc)
        raise TableError(msg if str(p) in msg else f"device table {p}: {msg}") from None
    if check_machine:
        note = table.portability_warning(str(path))
        if note:
            warnings.warn(note.removeprefix("warning: "), HwnasWarning, stacklevel=2)
    return table


def shipped_tables() -> list[str]:
    from importlib import resources

    try:
        root = resources.files("hwnas.device_tables")
    except ModuleNotFoundError:  # pragma: no cover - package data missing
        return []
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


def shipped_table_path(name: str) -> Path | None:
    from importlib import resources

    stem = name[:-5] if name.endswith(".json") else name
    if stem not in shipped_tables():
        return None
    return Path(str(resources.files("hwnas.device_tables").joinpath(stem + ".json")))


def fp32_sibling(table: DeviceTable, name: "str | Path") -> DeviceTable | None:
    """The fp32 table beside an int8 or fp16 one (the shipped name, or the file name with
    ``_fp32`` for its precision), when it is of the same space, backend and device: the
    figure a user compares a lower precision against. None when there is none."""
    prec = str(table.meta.get("precision", ""))
    if prec in ("", "fp32") or f"_{prec}" not in str(name):
        return None
    text = str(name)
    cand = text[::-1].replace(f"_{prec}"[::-1], "_fp32"[::-1], 1)[::-1]
    p = Path(cand)
    if not p.is_file() and shipped_table_path(cand) is None:
        return None
    try:
        other = load_device_table(cand, check_machine=False)
    except TableError:
        return None
    same = all(other.meta.get(k) == table.meta.get(k) for k in ("backend", "threads", "batch"))
    dev_a, dev_b = table.meta.get("device"), other.meta.get("device")
    same_dev = isinstance(dev_a, Mapping) and isinstance(dev_b, Mapping) and \
        dev_a.get("cpu") == dev_b.get("cpu")
    return other if same and same_dev and other.space_id == table.space_id else None
