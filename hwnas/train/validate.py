"""Checks of an accuracy table: does it rank real sub-networks, and does a proxy keep ranks?

- :func:`validate_table`: for random sub-networks, the table's predicted score (sum of
  per-layer scores) against the real validation accuracy with inherited weights (and,
  optionally, after a short fine-tune); Kendall tau and Spearman rho.
- :func:`rank_consistency`: the candidate ranking of a proxy table against the full one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import UserError, require
from ..tables.accuracy import AccuracyTable
from .data import DataSplit
from .loop import ProgressFn, accuracy, recalibrate_bn, sgd, train_steps
from .supernet import Supernet, extract_subnet

def rank_correlation(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Kendall tau-b and Spearman rho (0 when either side is constant)."""
    stats = require("scipy.stats", "torch")
    if len(a) != len(b) or len(a) < 2:
        raise UserError("rank correlation needs two equally long lists of at least 2 values")
    if len(set(a)) < 2 or len(set(b)) < 2:
        return {"kendall_tau": 0.0, "spearman_rho": 0.0}
    tau = stats.kendalltau(a, b).statistic
    rho = stats.spearmanr(a, b).statistic
    return {"kendall_tau": float(np.nan_to_num(tau)), "spearman_rho": float(np.nan_to_num(rho))}


@dataclass(frozen=True)
class EvalSettings:
    batch_size: int = 64
    bn_batches: int = 4
    finetune_steps: int = 0
    finetune_lr: float = 0.01
    seed: int = 0


def real_accuracy(supernet: Supernet, choices: Sequence[str], data: DataSplit,
                  settings: EvalSettings) -> tuple[float, float | None]:
    """Validation accuracy with inherited weights, and after ``finetune_steps`` (or None)."""
    sub = _recalibrated(supernet, choices, data, settings)
    inherited = accuracy(sub, data.val_x, data.val_y)
    if settings.finetune_steps <= 0:
        return inherited, None
    opt = sgd(sub.parameters(), settings.finetune_lr)
    train_steps(sub, data.train_x, data.train_y, opt, lambda r: None, settings.finetune_steps,
                settings.batch_size, settings.seed)
    return inherited, accuracy(sub, data.val_x, data.val_y)


def inherited_accuracies(supernet: Supernet, choices: Sequence[str], data: DataSplit,
                         settings: EvalSettings, splits: Sequence[tuple[Any, Any]]
                         ) -> list[float]:
    """Accuracy with inherited weights on each ``(x, y)`` of ``splits`` after one BN
    recalibration: the figures :func:`real_accuracy` gives with each split as validation
    (the same training batches recalibrate), for one extraction and recalibration in all."""
    sub = _recalibrated(supernet, choices, data, settings)
    return [accuracy(sub, x, y) for x, y in splits]


def _recalibrated(supernet: Supernet, choices: Sequence[str], data: DataSplit,
                  settings: EvalSettings):
    sub = extract_subnet(supernet, choices)
    recalibrate_bn(sub, data.train_x, settings.batch_size, settings.bn_batches, settings.seed)
    return sub


def sample_distinct(table: AccuracyTable, n: int, seed: int) -> list[tuple[str, ...]]:
    """``n`` distinct uniformly random architectures (fewer if the space is smaller)."""
    space = table.space
    n = min(n, space.size())
    rng = random.Random(f"validate:{seed}")
    seen: dict[tuple[str, ...], None] = {}
    for _ in range(100 * n):  # bounded: never loops forever on a tiny space
        if len(seen) >= n:
            break
        seen.setdefault(tuple(rng.choice(layer.choices) for layer in space.layers), None)
    return list(seen)


def validate_table(supernet: Supernet, table: AccuracyTable, data: DataSplit, samples: int = 20,
                   settings: EvalSettings = EvalSettings(),
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """Predicted (table) vs real accuracy of ``samples`` random sub-networks."""
    check_match(supernet, table)
    archs = sample_distinct(table, samples, settings.seed)
    rows = []
    for i, choices in enumerate(archs):
        inh, ft = real_accuracy(supernet, choices, data, settings)
        rows.append({"choices": list(choices), "predicted": table.total(choices),
                     "inherited": inh, "finetuned": ft})
        if progress:
            progress("validating", i + 1, len(archs))
    pred = [r["predicted"] for r in rows]
    out: dict[str, Any] = {"samples": len(rows), "rows": rows,
                           "inherited": rank_correlation(pred, [r["inherited"] for r in rows])}
    if settings.finetune_steps > 0:
        out["finetuned"] = rank_correlation(pred, [r["finetuned"] for r in rows])
        out["finetune_steps"] = settings.finetune_steps
    return out


def check_match(supernet: Supernet, table: AccuracyTable) -> None:
    got = [layer.choices for layer in supernet.space.layers]
    want = [layer.choices for layer in table.space.layers]
    if got != want:
        raise UserError(f"accuracy table (space {table.space.name}, id {table.space.id}) does not "
                        f"match the supernet's layers (space {supernet.space.name})")


def rank_consistency(proxy: AccuracyTable, full: AccuracyTable) -> dict[str, Any]:
    """Per layer and pooled rank correlation of candidate scores, proxy against full."""
    if proxy.space.id != full.space.id:
        raise UserError(f"tables are for different spaces ({proxy.space.name} id {proxy.space.id} "
                        f"vs {full.space.name} id {full.space.id})")
    per_layer = []
    pooled_p, pooled_f = [], []
    for i, (p, f) in enumerate(zip(proxy.matrix(), full.matrix())):
        if len(p) >= 2:
            per_layer.append({"layer": i, **rank_correlation(list(p), list(f))})
        # relative loss makes layers comparable when pooling
        pooled_p += list((p.max() - p) / (p.max() or 1.0))
        pooled_f += list((f.max() - f) / (f.max() or 1.0))
    mean = {k: float(np.mean([r[k] for r in per_layer])) if per_layer else 0.0
            for k in ("kendall_tau", "spearman_rho")}
    return {"proxy": proxy.provenance.get("proxy_tag", "?"),
            "full": full.provenance.get("proxy_tag", "?"), "layers": per_layer,
            "mean_per_layer": mean, "pooled": rank_correlation(pooled_p, pooled_f)}
