"""The main job (``hwnas run``): accuracy table, device table, frontier, engine files.

One call does what a deployment engineer does by hand, on the embedded default or their
own data:

0. check every argument that can be checked before training: the engine backend is
   registered and installed and supports the precision, the data is readable, the
   budgets are numbers (and reachable, when a shipped table for this backend exists);
1. profile every block of the space on this machine's runtime, in the engine's precision
   (resumed or reused if present), and check the budgets against it;
2. train a weight-sharing supernet and its PONAS accuracy table (reused if present);
3. refit the device table's calibration on whole networks of the run's own frontier
   measured with random ones (:mod:`hwnas.run.calibration`; ``recalibrate=False`` skips
   it), then compute the whole accuracy-latency frontier (exact knapsack) and pick one
   architecture per budget;
4. for each: build the engine (:mod:`hwnas.engines`: inherited weights, fine-tuning, QAT
   for int8, the runtime's engine file, parity, manifest), then time every engine file
   with the baselines; an engine that misses its budget steps down to a faster frontier
   point and is built again (:mod:`hwnas.engines.budget`, recorded in its manifest). A
   finished engine whose manifest matches the request is reused, not rebuilt. Every
   network timed (engines, chosen networks, baselines) is recorded in the device table as
   observed, predicted beside measured.

Every step writes its result atomically under the output folder, so a rerun resumes.
Engine folders and summaries carry the backend and precision in their names, so runs of
several backends share one ``--out`` (and one trained supernet) without mixing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hwnas_profilers.base import Progress

from .engines.manifest import EngineManifest
from .errors import UserError
from .fileio import write_json_atomic
from .run.folder import RunFolder
from .run.results import CSV_COLUMNS, RunResult, RunSummary
from .spaces import SearchSpace, load_space

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunConfig:
    space: str = "tiny-32"
    data: str = "digits"
    backend: str = "onnxruntime"
    precision: str = "fp32"
    quantization: str = "auto"           # int8 by qat, ptq, or auto: see ``wants_qat``
    ptq: str = "onnxruntime"             # the post-training quantizer: onnxruntime | nncf
    threads: int = 1
    budgets_ms: tuple[float, ...] = ()   # empty: three budgets spread over the frontier
    epochs: int = 20
    later_paths: int = 8                 # stage-2 context paths per layer (12: tau 0.543, 8: 0.536
    #                                      on 80 nets, RESULTS.md): the main job's 10-minute target
    finetune_steps: int = 150            # final fine-tune of each chosen network
    qat_steps: int = 100
    seed: int = 0
    quick: bool = False                  # short measurement protocol (noisier figures)
    train_device: str = "cpu"            # where the supernet trains (cuda: bf16 autocast)
    budget_margin: float | None = None   # None ("auto"): the device table's held-out error
    test_fraction: float = 0.15          # held-out test split (no part in training or choice)
    statistic: str | None = None         # floor, median, p90; None: the device table's own
    recalibrate: bool = True             # refit the device table on the run's own frontier

    def __post_init__(self) -> None:
        if self.finetune_steps < 0 or self.qat_steps < 1 or \
                min(self.epochs, self.threads, self.later_paths) < 1:
            raise UserError("epochs, threads, later paths and QAT steps must be >= 1, "
                            "finetune steps >= 0")
        from .limits import check_budgets, check_seed

        check_budgets(self.budgets_ms)  # finite, positive, none twice, at most 64
        check_seed(self.seed)
        if self.budget_margin is not None and not 0 <= self.budget_margin < 1:
            raise UserError(f"--budget-margin must be a percentage in [0, 100), got "
                            f"{100 * self.budget_margin:g}")
        from .engines.build import PTQ_LIBRARIES, QUANTIZATION

        if self.quantization not in QUANTIZATION:
            raise UserError(f"--quantization takes qat, ptq or auto, not {self.quantization!r}")
        if self.ptq not in PTQ_LIBRARIES:
            raise UserError(f"--ptq-with takes onnxruntime or nncf, not {self.ptq!r}")
        if self.statistic not in (None, "floor", "median", "p90"):
            raise UserError(f"the statistic is floor, median or p90, not {self.statistic!r}")

    @property
    def tag(self) -> str:
        return f"{self.backend}_{self.precision}"

    def request(self) -> Any:
        """The engine request; ``quantization="auto"`` is resolved by ``wants_qat``."""
        from .engines import EngineRequest, wants_qat

        return EngineRequest(backend=self.backend, precision=self.precision, device="cpu",
                             threads=self.threads, finetune_steps=self.finetune_steps,
                             qat=wants_qat(self.quantization, self.backend, self.precision),
                             qat_steps=self.qat_steps, ptq=self.ptq, seed=self.seed,
                             quick=self.quick)


def _default_budgets(points: Sequence[Any], margin: float = 0.0) -> list[float]:
    """Three budgets over the frontier: for the points at 15%, 50% and 100% of its latency
    range, the point's predicted latency plus the margin, rounded up to 0.1 us (so each
    budget admits its point, the last one the most accurate network)."""
    lo, hi = points[0].latency_ms, points[-1].latency_ms
    lats = [p.latency_ms for p in points]
    picks = {max((x for x in lats if x <= lo + q * (hi - lo) + 1e-12), default=lo)
             for q in (0.15, 0.5, 1.0)}
    return sorted({math.ceil(x * (1.0 + margin) * 1e4) / 1e4 for x in picks})


def budget_margin(cfg: RunConfig, dev: Any) -> tuple[float, str]:
    """The share of a budget kept free for prediction error, and where it came from.

    A budget is met by the *measured* engine, and an unbiased prediction misses half the
    budgets placed on a frontier point; so a network is chosen within ``budget / (1 +
    margin)``. ``auto``: the device table's worst held-out error over its calibration
    networks (``loo_max_abs_err_pct``), at least 3%."""
    if cfg.budget_margin is not None:
        return cfg.budget_margin, "--budget-margin"
    return dev.margin()


def check_run(cfg: RunConfig) -> tuple[Any, Any]:
    """Everything that can fail before training fails here (one line, exit 2)."""
    from .errors import require

    require("torch", "torch")
    require("matplotlib", "plot")  # the report's figures, drawn at the very end
    space = load_space(cfg.space)
    emitter = cfg.request().emitter()  # registered, installed, precision supported
    from hwnas_profilers import ProfilerError, Settings, get_profiler

    try:
        get_profiler(emitter.profiler, Settings(device="cpu", precision=cfg.precision,
                                                threads=cfg.threads)).close()
    except ProfilerError as exc:
        raise UserError(f"profiling {cfg.backend} {cfg.precision}: {exc}") from None
    if cfg.budgets_ms:
        from .engines import default_table

        table = default_table(space, cfg.backend, "cpu", cfg.precision)
        if table is not None:
            lo = table.fastest_ms(space)
            if min(cfg.budgets_ms) < 0.5 * lo:  # tables of other hosts differ; be lenient
                raise UserError(f"budget {min(cfg.budgets_ms)} ms is far below the fastest "
                                f"{space.name} network on {cfg.backend} {cfg.precision} "
                                f"({lo:.4f} ms in the shipped table)")
    from .train.data import BUILTIN_DATA

    if cfg.data not in BUILTIN_DATA and not Path(cfg.data).exists():
        raise UserError(f"data {cfg.data} does not exist (give "
                        f"{' or '.join(map(repr, BUILTIN_DATA))}, an image folder or a .npz)")
    if cfg.train_device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--train-device cuda: no CUDA GPU is visible to PyTorch here; "
                            "train on the cpu (the default)")
    return space, emitter


def _train_config(cfg: RunConfig) -> Any:
    from .train.ponas import TrainConfig

    # the tuned setting of benchmarks/train_tiny.py (RESULTS.md): marginal stage-2 scores
    # over shared context paths rank whole architectures best
    return TrainConfig(epochs=cfg.epochs, batch_size=32, finetune_steps=0,
                       later_paths=cfg.later_paths,
                       bn_batches=8, prefix="sampled", val_fraction=0.3,
                       test_fraction=cfg.test_fraction, seed=cfg.seed)


def _trained(space, run: RunFolder, tcfg) -> Any:
    """The finished accuracy table in the run's ``train`` folder, if any; one trained with
    other settings is refused (its validation images could be this run's test images)."""
    from .tables.accuracy import load_accuracy_table

    tdir = run.train_dir
    if not (run.accuracy_table.is_file() and run.checkpoint.is_file()):
        return None
    table = load_accuracy_table(run.accuracy_table, space)
    made = table.provenance.get("config")
    if made is not None and not tcfg.same_as(made):
        raise UserError(f"{tdir} holds a supernet trained with other settings (epochs, "
                        "context paths, data split or seed); use another --out, or remove "
                        f"{tdir} to train again")
    return table


def _train(cfg: RunConfig, space, run: RunFolder, say: Say, progress, tcfg, table):
    from .train.ponas import data_for, train_accuracy_table

    data = data_for(space, cfg.data, tcfg)
    tdir = run.train_dir
    if table is not None:
        say(f"accuracy table: reusing {run.accuracy_table}")
        return table, run.checkpoint, data
    from .train.distributed import setup

    dist = setup(cfg.train_device)
    say(f"training the {space.name} supernet on {cfg.data} (PONAS two stages, "
        f"{cfg.train_device})")
    res = train_accuracy_table(space, data, tdir, tcfg, progress=progress, dist=dist)
    return res.table, res.checkpoint_path, data


def _check_budgets(cfg: RunConfig, space, dev, margin: float, table_path: Path) -> None:
    """Budgets against this machine's device table, before any training: the fastest
    network of the space (every layer's fastest candidate) with the margin must fit."""
    if not cfg.budgets_ms:
        return
    fastest = dev.fastest_ms(space)
    if min(cfg.budgets_ms) / (1.0 + margin) < fastest * (1 - 1e-9):
        raise UserError(f"budget {min(cfg.budgets_ms):g} ms is below the fastest {space.name} "
                        f"network on this machine with the {100 * margin:.1f}% margin for "
                        f"prediction error: {fastest * (1 + margin):.4f} ms ({fastest:.4f} ms "
                        f"predicted by {table_path}; --budget-margin sets the margin); nothing "
                        "was trained, the device table is kept")


def _device_table(cfg: RunConfig, space, emitter, run: RunFolder, say: Say, progress):
    from .profiling import profile_space
    from .tables.device import load_device_table

    path = run.device_table
    if path.exists():
        table = load_device_table(path)
        if table.meta.get("status") == "complete":
            say(f"device table: reusing {path}")
            w = table.portability_warning(str(path))
            if w:
                say(w)
            return table, path
        say(f"device table: resuming {path}")
    else:
        say(f"device table: profiling {len(space.unique_blocks())} blocks of {space.name} on "
            f"{emitter.profiler} {cfg.precision} ({cfg.threads} thread(s))")
    # no stand-in frontier here: the run refits the table on its own one once trained
    profile_space(space, emitter.profiler, path, precision=cfg.precision, threads=cfg.threads,
                  resume=path.exists(), quick=cfg.quick,
                  progress=progress, frontier_nets=0)
    return load_device_table(path), path


def _in_statistic(cfg: RunConfig, dev: Any, run: RunFolder) -> Any:
    """The device table predicting the statistic the budgets are stated in; a folder whose
    earlier run chose and measured in another statistic is refused (its engines and
    baselines would be judged in the wrong one)."""
    from .runfiles import read_summary

    dev = dev.for_statistic(cfg.statistic)
    if run.summary.is_file():
        try:
            before = read_summary(run.summary).get("statistic")
        except UserError:
            before = None
        if before not in (None, dev.figure):
            raise UserError(f"{run.root} holds a run whose budgets are in the {before}; this "
                            f"one asks for the {dev.figure}: use another output folder")
    return dev


def _reusable(folder: Path, arch, req, archs) -> "tuple[Any, dict[str, Any]] | None":
    """The engine in ``folder`` and its architecture, when it was built by this request for
    ``arch`` or, after a step down, for ``arch``'s budget (its first pick was ``arch``)."""
    from dataclasses import asdict

    from .engines.budget import first_choices, index_of
    from .runfiles import engine_file, read_run_file

    manifest = RunFolder.manifest(folder)
    if not manifest.is_file():
        return None
    try:  # read as input: schema checked, the engine inside its folder and its sha256 verified
        m = read_run_file(manifest, "hwnas.engine_manifest", "engine manifest")
        m["engine"]["path"] = str(engine_file(manifest, m))
    except UserError:
        return None  # edited or changed since hwnas wrote it: built anew
    if m.get("request") != asdict(req) or first_choices(m) != list(arch.choices):
        return None
    i = index_of(archs, (m.get("architecture") or {}).get("choices") or [])
    return None if i is None else (archs[i], m)


def run_pipeline(cfg: RunConfig, out_dir: "str | Path", say: Say = lambda s: None,
                 progress: Progress | None = None) -> RunSummary:
    space, emitter = check_run(cfg)
    out = Path(out_dir).absolute()
    from .fileio import folder_lock

    lock = folder_lock(out, "run folder")  # two runs into one --out would mix their files
    try:
        run = RunFolder(out, cfg.backend, cfg.precision, emitter.profiler)
        return _run(cfg, space, emitter, run, say, progress)
    finally:
        lock.release()


def _run(cfg: RunConfig, space: SearchSpace, emitter: Any, run: RunFolder, say: Say,
         progress: Progress | None) -> RunSummary:
    # cheap checks first: a train/ folder of other settings, then the device table (about
    # a minute) and the budgets against it, and only then the training (minutes)
    tcfg = _train_config(cfg)
    trained = _trained(space, run, tcfg)
    dev, table_path = _device_table(cfg, space, emitter, run, say, progress)
    dev = _in_statistic(cfg, dev, run)
    margin, margin_from = budget_margin(cfg, dev)
    _check_budgets(cfg, space, dev, margin, table_path)
    acc, ck_path, data = _train(cfg, space, run, say, progress, tcfg, trained)
    dev, calibration = _recalibrated(cfg, space, run, table_path, acc, dev, say, progress)
    margin, margin_from = budget_margin(cfg, dev)

    front, budgets = _frontier(cfg, run, acc, dev, margin, say)
    engines = _Engines(cfg, space, run, front, dev, data, Path(ck_path), table_path, say)
    archs = front.architectures()
    built = [engines.first(b, archs[front.index_for_budget(b / (1.0 + margin))])
             for b in budgets]
    built, base = engines.settle(built, acc)
    from .run.calibration import record_observed

    calibration["observed"] = record_observed(
        table_path, run, dev, space,
        [(f"{b.budget:g} ms", b.arch.choices, b.manifest.measured_ms) for b in built], base)
    from .report import predicted_accuracy

    results = [RunResult.of_engine(b.budget, b.arch, b.manifest, b.budget / (1.0 + margin),
                                   str(RunFolder.manifest(b.folder)),
                                   predicted_accuracy(base, b.arch.score)) for b in built]
    front.save(run.frontier,
               lambda p: {"predicted_accuracy": predicted_accuracy(base, p.architecture.score)})
    summary = RunSummary(space=space.name, space_id=space.id, data=cfg.data,
                         backend=cfg.backend, precision=cfg.precision, statistic=dev.figure,
                         device_table=str(table_path),
                         budget_margin={"value": margin, "from": margin_from},
                         data_split=data.describe(), frontier_points=len(front.points()),
                         results=results, calibration=calibration)
    return _write_summary(run, summary, say)


def _recalibrated(cfg: RunConfig, space: SearchSpace, run: RunFolder, table_path: Path, acc: Any,
                  dev: Any, say: Say, progress: Progress | None) -> tuple[Any, dict[str, Any]]:
    """The device table refitted on the run's own frontier (in the run's statistic), and
    what happened, for the summary."""
    from .run.calibration import recalibrate_for_run
    from .tables.device import load_device_table

    done = recalibrate_for_run(cfg.recalibrate, cfg.seed, cfg.quick, space, run, table_path,
                               acc, say, progress)
    if done["status"] == "skipped":
        return dev, done
    return load_device_table(table_path, check_machine=False).for_statistic(cfg.statistic), done


def _frontier(cfg: RunConfig, run: RunFolder, acc: Any, dev: Any, margin: float, say: Say
              ) -> tuple[Any, list[float]]:
    """The exact accuracy-latency frontier (saved) and the budgets to build engines for."""
    from .solver import frontier

    front = frontier(acc, dev)  # one exact frontier serves every budget
    points = front.points()
    front.save(run.frontier)
    budgets = list(cfg.budgets_ms) or _default_budgets(points, margin)
    if budgets and min(budgets) / (1.0 + margin) < points[0].latency_ms:
        raise UserError(f"budget {min(budgets)} ms is below the fastest network of the "
                        f"frontier with a {100 * margin:.1f}% margin for prediction error "
                        f"({points[0].latency_ms * (1 + margin):.4f} ms on {cfg.tag}; "
                        f"--budget-margin sets the margin); the trained supernet and device "
                        f"table stay in {run.root}")
    say(f"frontier: {len(points)} Pareto-optimal architectures from "
        f"{points[0].latency_ms:.4f} to {points[-1].latency_ms:.4f} ms; budgets {budgets}, "
        f"each network predicted at least {100 * margin:.1f}% below its budget")
    return front, budgets


@dataclass(frozen=True)
class _Built:
    """The engine of one budget: the network it was built from, its folder and manifest."""

    budget: float
    arch: Any
    folder: Path
    manifest: EngineManifest


class _Engines:
    """Builds, reuses, measures and steps down the engines of one run, one per budget."""

    def __init__(self, cfg: RunConfig, space: SearchSpace, run: RunFolder, front: Any,
                 dev: Any, data: Any, ck_path: Path, table_path: Path, say: Say) -> None:
        import hashlib
        from dataclasses import replace

        from .train.checkpoint import load_checkpoint

        self.cfg, self.space, self.run, self.front, self.dev = cfg, space, run, front, dev
        self.data, self.say = data, say
        self.archs = front.architectures()
        self.supernet = load_checkpoint(ck_path, space).supernet().eval()
        # the engines are built here and timed by settle(), all in one interleaved run with
        # the baselines (one noise history for every point of the report, one protocol
        # span instead of one per engine: about 100 s of the main job on a 2-core host)
        self.req = replace(cfg.request(), measure=False)
        self.extra = {"device_table": str(table_path),
                      "accuracy_table": str(run.accuracy_table), "supernet": str(ck_path)}
        self.ck_sha = hashlib.sha256(ck_path.read_bytes()).hexdigest()

    def build(self, budget: float, arch: Any, step: dict[str, Any] | None = None) -> _Built:
        from .engines import build_engine

        folder = self.run.engine_dir(budget)
        m = build_engine(self.space, arch, self.supernet, self.data, self.req, folder,
                         self.dev, force=True, say=lambda s: self.say(f"  {s}"),
                         extra={"budget_ms": budget, **self.extra,
                                **({"step_down": step} if step else {})})
        arch.save(RunFolder.architecture(folder))
        return _Built(budget, arch, folder, EngineManifest.from_json(m))

    def first(self, budget: float, arch: Any) -> _Built:
        """The engine the solver's pick ``arch`` gets: reused when this request built it."""
        from .engines.budget import tried

        folder = self.run.engine_dir(budget)
        found = _reusable(folder, arch, self.req, self.archs)
        if found is None:
            self.say(f"{folder.name}: {arch.notation()} predicted {arch.latency_ms:.4f} ms; "
                     f"building the {self.cfg.backend} {self.cfg.precision} engine")
            return self.build(budget, arch)
        arch, m = found[0], EngineManifest.of(found[1])
        steps = len(tried(m))
        self.say(f"{folder.name}: reusing the engine built on {m.date or None}"
                 + (f" ({steps} step(s) down from the first pick)" if steps else ""))
        return _Built(budget, arch, folder, m)

    def measure(self, built: list[_Built], acc: Any) -> dict[str, Any]:
        """Every engine file timed with the baselines (one interleaved run)."""
        from .run.baselines import measure_baselines

        return measure_baselines(self.run, self.space, self.supernet, self.data, acc,
                                 self.dev, [(b.budget, b.arch) for b in built],
                                 self.cfg.threads, self.cfg.quick, self.say,
                                 engines={f"{b.budget:g}": Path(b.manifest.engine_path)
                                          for b in built},
                                 supernet_sha256=self.ck_sha)

    def settle(self, built: list[_Built], acc: Any) -> tuple[list[_Built], dict[str, Any]]:
        """Measure every engine; an engine over its budget steps down to a faster frontier
        point and is built again (:mod:`hwnas.engines.budget`), and all are timed again."""
        from .engines.budget import MAX_STEPS

        for _ in range(MAX_STEPS + 1):
            base = self.measure(built, acc)
            built = [self._timed(b, base) for b in built]
            stepped = [self._stepped(b) for b in built]
            if all(s is None for s in stepped):
                break
            built = [s or b for s, b in zip(stepped, built)]
        return built, base

    def _timed(self, b: _Built, base: dict[str, Any]) -> _Built:
        """``b`` with the measurement of the interleaved run written into its manifest."""
        from dataclasses import replace

        from .engines.build import attach_measurement

        timed = (base.get("engines") or {}).get(f"{b.budget:g}")
        if not timed or b.manifest.measured_ms == timed.get("measured_ms"):
            return b
        m = attach_measurement(RunFolder.manifest(b.folder), timed, self.dev, self.space,
                               b.arch, self.req)
        return replace(b, manifest=m)

    def _stepped(self, b: _Built) -> _Built | None:
        """The engine a step down builds instead of ``b``, or None (met, or no step left)."""
        from .engines.budget import missed, step_down, tried

        nxt = step_down(self.front, self.archs, b.budget, b.arch, b.manifest)
        meas = b.manifest.measured_ms
        if nxt is None:
            if missed(b.manifest, b.budget):
                self.say(f"{b.folder.name}: measured {meas:.4f} ms, over its budget, and no "
                         f"further step down is taken ({len(tried(b.manifest))} taken; the "
                         f"fastest frontier point is {self.archs[0].latency_ms:.4f} ms)")
            return None
        arch, step = nxt
        self.say(f"{b.folder.name}: measured {meas:.4f} ms, over its {b.budget:g} ms budget; "
                 f"stepping down to {arch.notation()} (predicted {arch.latency_ms:.4f} ms)")
        return self.build(b.budget, arch, step)


def _write_summary(run: RunFolder, summary: RunSummary, say: Say) -> RunSummary:
    """The summary (JSON and CSV), then the report drawn from the folder, then the summary
    again naming the report."""
    from dataclasses import replace

    from .report import write_report

    write_json_atomic(run.summary, summary.to_json())
    _write_csv(run.summary_csv, summary.results)
    say("report: drawing figures")
    summary = replace(summary, report=str(write_report(run)))
    write_json_atomic(run.summary, summary.to_json())
    return summary


def _write_csv(path: Path, rows: Sequence[RunResult]) -> None:
    import csv
    import io

    from .fileio import write_text_atomic

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(r.csv_row())
    write_text_atomic(path, buf.getvalue())
