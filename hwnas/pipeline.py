"""The main job (``hwnas run``): accuracy table, device table, frontier, deployable networks.

One call does what a deployment engineer does by hand, on the embedded default or their
own data:

1. train a weight-sharing supernet and its PONAS accuracy table (reused if present);
2. profile every block of the space on this machine's runtime (resumed if present);
3. compute the whole accuracy-latency frontier (exact knapsack) and pick one
   architecture per budget;
4. for each: extract the sub-network with inherited weights, fine-tune it briefly,
   export ONNX, measure it end to end on the same runtime, check ONNX/PyTorch output
   parity, and write a manifest with predicted beside measured latency.

Every step writes its result atomically under the output folder, so a rerun resumes.
"""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import UserError
from .fileio import write_json_atomic
from .spaces import load_space

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunConfig:
    space: str = "tiny-32"
    data: str = "digits"
    backend: str = "onnxruntime"
    threads: int = 1
    budgets_ms: tuple[float, ...] = ()   # empty: three budgets spread over the frontier
    epochs: int = 20
    later_paths: int = 12                # stage-2 context paths per layer
    finetune_steps: int = 150            # final fine-tune of each chosen network
    seed: int = 0
    quick: bool = False                  # short measurement protocol (noisier figures)

    def __post_init__(self) -> None:
        if self.finetune_steps < 0 or min(self.epochs, self.threads, self.later_paths) < 1:
            raise UserError("epochs, threads and later paths must be >= 1, finetune steps >= 0")
        if any(not b > 0 for b in self.budgets_ms):
            raise UserError("budgets must be positive numbers of milliseconds")


def _default_budgets(points: Sequence[Any]) -> list[float]:
    lo, hi = points[0].latency_ms, points[-1].latency_ms
    return sorted({round(lo + q * (hi - lo), 4) for q in (0.15, 0.5, 1.0)})


def _train(cfg: RunConfig, space, out: Path, say: Say, progress):
    from .tables.accuracy import load_accuracy_table
    from .train.checkpoint import CHECKPOINT_NAME
    from .train.ponas import TABLE_NAME, TrainConfig, data_for, train_accuracy_table

    # the tuned setting of benchmarks/train_tiny.py (RESULTS.md): marginal stage-2 scores
    # over 12 shared context paths rank whole architectures best
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=32, finetune_steps=0,
                       later_paths=cfg.later_paths,
                       bn_batches=8, prefix="sampled", val_fraction=0.3, seed=cfg.seed)
    data = data_for(space, cfg.data, tcfg)
    tdir = out / "train"
    if (tdir / TABLE_NAME).is_file() and (tdir / CHECKPOINT_NAME).is_file():
        say(f"accuracy table: reusing {tdir / TABLE_NAME}")
        return load_accuracy_table(tdir / TABLE_NAME, space), tdir / CHECKPOINT_NAME, data
    say(f"training the {space.name} supernet on {cfg.data} (PONAS two stages)")
    res = train_accuracy_table(space, data, tdir, tcfg, progress=progress)
    return res.table, res.checkpoint_path, data


def _deploy(cfg: RunConfig, space, arch, supernet, data, path: Path) -> dict[str, Any]:
    """Fine-tune the inherited sub-network, export ONNX, check parity, measure."""
    import numpy as np
    import torch

    from .nn.export import export_architecture
    from .profiling import measure_onnx
    from .train.loop import accuracy, recalibrate_bn, sgd, train_steps
    from .train.supernet import extract_subnet

    sub = extract_subnet(supernet, arch)
    recalibrate_bn(sub, data.train_x, 64, 4, cfg.seed)
    inherited = accuracy(sub, data.val_x, data.val_y)
    if cfg.finetune_steps:
        train_steps(sub, data.train_x, data.train_y, sgd(sub.parameters(), 0.01), lambda r: None,
                    cfg.finetune_steps, 64, cfg.seed)
    sub.eval()
    tuned = accuracy(sub, data.val_x, data.val_y)
    onnx_path = export_architecture(space, arch, path / "model.onnx", model=sub)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = data.val_x[:16].numpy().astype(np.float32)
    with torch.no_grad():
        ref = sub(torch.from_numpy(x)).numpy()
    got = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    parity = float(np.max(np.abs(ref - got)))
    meas = measure_onnx(onnx_path, cfg.backend, threads=cfg.threads, quick=cfg.quick)
    return {"onnx": str(onnx_path), "val_accuracy_inherited": inherited,
            "val_accuracy": tuned, "finetune_steps": cfg.finetune_steps,
            "parity_max_abs_diff": parity, "measured_ms": meas["median_ms"],
            "measured_spread_ms": meas.get("spread_ms"), "measured_n": meas.get("n")}


def run_pipeline(cfg: RunConfig, out_dir: "str | Path", say: Say = lambda s: None,
                 progress=None) -> dict[str, Any]:
    from .errors import require

    require("torch", "torch")
    require("onnxruntime", "onnxruntime")
    from .profiling import profile_space
    from .solver import build_frontier
    from .tables.device import load_device_table
    from .train.checkpoint import load_checkpoint

    space = load_space(cfg.space)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    acc, ck_path, data = _train(cfg, space, out, say, progress)

    table_path = out / f"device_table_{cfg.backend}.json"
    say(f"device table: profiling {len(space.unique_blocks())} blocks of {space.name} on "
        f"{cfg.backend} ({cfg.threads} thread(s))")
    profile_space(space, cfg.backend, table_path, threads=cfg.threads,
                  resume=table_path.exists(), quick=cfg.quick)
    dev = load_device_table(table_path)

    front = build_frontier(acc, dev)  # one exact frontier serves every budget
    points = front.points()
    write_json_atomic(out / "frontier.json", [
        {"latency_ms": p.latency_ms, "score": p.score, "choices": list(p.architecture.choices)}
        for p in points])
    budgets = list(cfg.budgets_ms) or _default_budgets(points)
    say(f"frontier: {len(points)} Pareto-optimal architectures from "
        f"{points[0].latency_ms:.3f} to {points[-1].latency_ms:.3f} ms; budgets {budgets}")

    chosen = front.architectures([front.index_for_budget(b) for b in budgets])
    supernet = load_checkpoint(ck_path, space).supernet().eval()
    results = []
    for budget, arch in zip(budgets, chosen):
        name = f"budget_{budget:g}ms"
        say(f"{name}: {arch.notation()} predicted {arch.latency_ms:.3f} ms; fine-tuning, "
            "exporting and measuring")
        deployed = _deploy(cfg, space, arch, supernet, data, out / name)
        err = (arch.latency_ms - deployed["measured_ms"]) / deployed["measured_ms"]
        manifest = {
            "kind": "hwnas.engine_manifest", "schema": 1, "budget_ms": budget,
            "architecture": arch.to_dict(), "engine": {"format": "onnx", "runtime": cfg.backend,
                                                       **deployed},
            "predicted_ms": arch.latency_ms, "prediction_error": err,
            "device_table": str(table_path), "accuracy_table": str(out / "train"),
            "host": {"machine": platform.machine(), "processor": platform.processor(),
                     "python": platform.python_version()},
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_json_atomic(out / name / "manifest.json", manifest)
        arch.save(out / name / "arch.json")
        results.append({"budget_ms": budget, "choices": list(arch.choices),
                        "score": arch.score, "predicted_ms": arch.latency_ms,
                        "measured_ms": deployed["measured_ms"], "prediction_error": err,
                        "val_accuracy": deployed["val_accuracy"],
                        "parity_max_abs_diff": deployed["parity_max_abs_diff"],
                        "manifest": str(out / name / "manifest.json")})
    summary = {"space": space.name, "space_id": space.id, "data": cfg.data,
               "backend": cfg.backend, "frontier_points": len(points), "results": results}
    write_json_atomic(out / "summary.json", summary)
    return summary
