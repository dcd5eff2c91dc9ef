"""Baselines measured beside the chosen networks (the report draws them; this measures).

A baseline family is timed with the device table's own backend, precision and statistic,
interleaved in one protocol run with the chosen networks and the engine files (so every
point on the report's plots shares one noise history): every uniform network of the space
(the same candidate in every layer), its shallow twin (``skip`` wherever a layer allows
it) for the narrowest and widest candidate, and 20 random architectures. Each network's
accuracy is the supernet's with inherited weights and recalibrated BN on the validation
split, the same procedure for chosen and baseline networks (a fair comparison; the
engines' fine-tuned accuracy is reported separately). A line fitted from the accuracy
table's score to that accuracy over the random networks turns the table's score (a sum of
per-layer accuracies) into a predicted accuracy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from hwnas_profilers.fileformat import KINDS

from ..fileio import write_json_atomic
from .folder import RunFolder

RANDOM_BASELINES = 20
Net = tuple[str, list[str], str]  # label, choices, "baseline" or "chosen"


def baseline_family(space: Any) -> list[tuple[str, list[str]]]:
    """(label, choices) of the uniform networks, two shallow twins and random networks."""
    from ..arch import sample_architecture

    layers = space.layers
    common = [c for c in layers[0].choices
              if c != "skip" and all(c in layer.choices for layer in layers)]
    fam = [(f"uniform {c}", [c] * len(layers)) for c in common]
    for c in dict.fromkeys([common[0], common[-1]]) if common else []:
        shallow = ["skip" if "skip" in layer.choices else c for layer in layers]
        if shallow != [c] * len(layers):
            fam.append((f"shallow {c}", shallow))
    for i in range(RANDOM_BASELINES):
        fam.append((f"random {i}", list(sample_architecture(space, seed=10_000 + i).choices)))
    return fam


@dataclass
class _Accuracies:
    """The supernet accuracies known before measuring (a chosen network may also be a
    baseline), on validation and, where the data has one, the held-out test split."""

    described: str
    has_test: bool
    val: dict[tuple[str, ...], float] = field(default_factory=dict)
    test: dict[tuple[str, ...], float] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Any) -> "_Accuracies":
        # the held-out split evaluated by the same procedure (its images took no part in
        # the table or the choice): what the dominance check compares
        has_test = bool(data.has_test)
        described = ("supernet, inherited weights, BN recalibrated, validation split "
                     f"({int(len(data.val_y))} images)" + (
                         f"; and on the held-out test split ({int(len(data.test_y))} images, "
                         "supernet_test_accuracy)" if has_test else ""))
        return cls(described, has_test)

    def keep_from(self, old: dict[str, Any], supernet_sha256: str | None) -> None:
        """Take the figures of a previous file of the same supernet checkpoint and splits."""
        if not (supernet_sha256 and old.get("supernet_sha256") == supernet_sha256
                and old.get("accuracy") == self.described):
            return
        for n in old.get("networks", []):
            if n.get("supernet_val_accuracy") is not None and \
                    (not self.has_test or n.get("supernet_test_accuracy") is not None):
                self.val[tuple(n["choices"])] = n["supernet_val_accuracy"]
                if self.has_test:
                    self.test[tuple(n["choices"])] = n["supernet_test_accuracy"]

    def evaluate(self, supernet: Any, choices: list[str], data: Any) -> float:
        """The validation accuracy of ``choices`` (evaluated once, with the test split)."""
        from ..train.validate import EvalSettings, inherited_accuracies

        key = tuple(choices)
        if key not in self.val:
            splits = [(data.val_x, data.val_y)] + (
                [(data.test_x, data.test_y)] if self.has_test else [])
            got = inherited_accuracies(supernet, choices, data, EvalSettings(), splits)
            self.val[key] = got[0]
            if self.has_test:
                self.test[key] = got[1]
        return self.val[key]


def measure_baselines(run: RunFolder, space: Any, supernet: Any, data: Any, acc: Any,
                      dev: Any, chosen: Sequence[tuple[float, Any]], threads: int = 1,
                      quick: bool = False, say: Callable[[str], None] = lambda s: None,
                      engines: "dict[str, Path] | None" = None,
                      supernet_sha256: "str | None" = None) -> dict[str, Any]:
    """Measure and evaluate the baseline family and the chosen networks; write the run
    folder's baselines file (reused when present and made for the same networks and engine
    files). ``engines`` (label -> engine file) are timed in the same interleaved run, each
    the way ``hwnas measure`` times one (the fastest of 3 sessions); their manifest fields
    are in the result's ``engines``. With ``supernet_sha256`` (the checkpoint's digest),
    the accuracies of a previous file of the same supernet and splits are reused: after a
    step down only the latency is measured again (the accuracies took a minute)."""
    path = run.baselines
    nets: list[Net] = [(lbl, list(ch), "baseline") for lbl, ch in baseline_family(space)] + \
        [(f"chosen {b:g} ms", list(a.choices), "chosen") for b, a in chosen]
    engines = dict(engines or {})
    sums = {k: hashlib.sha256(Path(f).read_bytes()).hexdigest() for k, f in engines.items()}
    known = _Accuracies.of(data)
    if path.is_file():
        from ..runfiles import read_baselines

        old = read_baselines(path)  # typed: a hand-edited file is one line, not a KeyError
        if [n["choices"] for n in old.get("networks", [])] == [n[1] for n in nets] and \
                (old.get("engine_files") or {}) == sums:
            say(f"baselines: reusing {path}")
            return old
        known.keep_from(old, supernet_sha256)
    say(f"baselines: measuring {len(engines)} engine files, {len(nets) - len(chosen)} "
        f"baseline and {len(chosen)} chosen networks on {dev.meta.get('backend')} "
        f"{dev.meta.get('precision')} ({dev.figure}), interleaved")
    files = _network_files(space, nets, str(dev.meta.get("backend")),
                           str(dev.meta.get("precision", "fp32")))
    timed, res = _time(space, dev, engines, files, threads, quick)
    rows = [_row(space, dev, acc, supernet, data, known, net, res.get(str(f)))
            for net, f in zip(nets, files)]
    from ..engines.build import measured_fields

    d = {"kind": "hwnas.baselines", "schema": KINDS["hwnas.baselines"], "statistic": dev.figure,
         "accuracy": known.described, "supernet_sha256": supernet_sha256,
         "score_to_accuracy": _fit(rows), "networks": rows,
         "engines": {k: measured_fields(r) for k, r in timed.items()}, "engine_files": sums}
    write_json_atomic(path, d)
    return d


def _network_files(space: Any, nets: Sequence[Net], backend: str = "onnxruntime",
                   precision: str = "fp32") -> list[Path]:
    """The file of each network (fresh weights: latency only) the table's backend reads,
    cached by space: fp32 ONNX, or, for a backend whose bundles are converted on the host
    (LiteRT), that format in the table's precision."""
    from hwnas_profilers.registry import backend_class

    from ..arch import Architecture
    from ..nn.export import export_architecture
    from ..profiling import cache_dir, profiler_errors

    with profiler_errors():
        fmt = backend_class(backend).bundle_format
    if fmt != "onnx":
        return _converted_files(space, nets, fmt, precision)
    ndir = cache_dir() / "baselines" / f"{space.name}-{space.id}"
    files = []
    for _, ch, _ in nets:
        f = ndir / (("_".join(ch)) + ".onnx")
        if not f.is_file():
            export_architecture(space, Architecture.of(space, ch), f)
        files.append(f)
    return files


def _converted_files(space: Any, nets: Sequence[Net], fmt: str, precision: str) -> list[Path]:
    """:func:`_network_files` through the bundle writer of ``fmt`` (one conversion each)."""
    from ..arch import Architecture
    from ..bundle import format_writer
    from ..nn.subnet import build_subnet
    from ..profiling import cache_dir

    writer = format_writer(fmt)
    ndir = cache_dir() / "baselines" / f"{space.name}-{space.id}-{fmt}"
    shape = [1, space.input[2], space.input[0], space.input[1]]
    return [ndir / writer.write_bundle_files(
        lambda ch=ch: build_subnet(space, Architecture.of(space, ch), 0).eval(), shape, ndir,
        "_".join(ch), (precision,))[precision] for _, ch, _ in nets]


def _time(space: Any, dev: Any, engines: dict[str, Path], files: Sequence[Path],
          threads: int, quick: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine files and the networks timed in one interleaved run, with the device
    table's backend, precision and statistic."""
    from dataclasses import replace

    from ..profiling import profiler_errors

    shape = (1, space.input[2], space.input[0], space.input[1])
    with profiler_errors():
        from hwnas_profilers import Protocol, Settings
        from hwnas_profilers.bundle_run import measure_models

        proto = replace(Protocol.quick() if quick else Protocol(), figure=dev.figure)
        return measure_models({k: (Path(f), shape) for k, f in engines.items()},
                              str(dev.meta.get("backend")),
                              Settings(precision=str(dev.meta.get("precision", "fp32")),
                                       threads=threads),
                              protocol=proto,
                              others={str(f): (f, shape) for f in dict.fromkeys(files)})


def _row(space: Any, dev: Any, acc: Any, supernet: Any, data: Any, known: _Accuracies,
         net: Net, st: Any) -> dict[str, Any]:
    """One network's row: predicted and measured latency, score and supernet accuracy."""
    from hwnas_profilers.protocol import Stats

    from ..arch import Architecture

    lbl, ch, kind = net
    measured = isinstance(st, Stats)
    inherited = known.evaluate(supernet, ch, data)
    return {"label": lbl, "kind": kind, "choices": ch,
            "predicted_ms": dev.predict(space, Architecture.of(space, ch)).latency_ms,
            "measured_ms": st.figure(dev.figure) if measured else None,
            "measured_spread_ms": st.spread_ms if measured else None,
            "measured_p90_ms": st.p90_ms if measured else None,
            "failure": st if isinstance(st, str) else None,
            "table_score": acc.total(ch), "supernet_val_accuracy": inherited,
            "supernet_test_accuracy": known.test.get(tuple(ch))}


def _fit(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The line from table score to supernet accuracy over the random networks; every
    row gets its ``predicted_accuracy``."""
    rnd = [r for r in rows if r["label"].startswith("random")]
    a, b = np.polyfit([r["table_score"] for r in rnd],
                      [r["supernet_val_accuracy"] for r in rnd], 1)
    resid = [r["supernet_val_accuracy"] - (a * r["table_score"] + b) for r in rnd]
    for r in rows:
        r["predicted_accuracy"] = float(a * r["table_score"] + b)
    return {"slope": float(a), "intercept": float(b), "fitted_on": len(rnd),
            "rms_residual": float(np.sqrt(np.mean(np.square(resid))))}
