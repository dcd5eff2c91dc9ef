"""A genetic search whose supernet is fine-tuned along the way, with an EcoNAS-style
hierarchical proxy for scoring.

After Yuan, Xue and Zhang (GECCO 2023, "An Effective One-Shot NAS Method with Supernet
Fine-Tuning for Image Classification"): the fitness of an architecture is its
inherited-weight validation accuracy (batch norm recalibrated on training images); between
generations the supernet is fine-tuned on paths drawn from the region the population
occupies (each layer's choice drawn from that layer's choices in the population,
smoothed so that every candidate keeps a little weight), so its weights adapt to that
region; the parents carried into the next generation are scored again on the fine-tuned
weights, so every fitness in one generation comes from the same weights.

Latency comes from a device table through its additive layer costs (the prediction the
exact solver uses). Every individual is made feasible by *repair*: while it is over the
budget, one layer (drawn in proportion to how much it could save) moves to a cheaper
candidate. Each step lowers the latency strictly and the all-cheapest network is within
the budget (checked first), so repair ends; nothing is ever drawn until it happens to fit.

The hierarchical proxy (EcoNAS, Zhou et al. 2020: reduced settings rank candidates
cheaply): each generation's candidates are scored first on a fraction of the validation
images (and of the BN calibration batches), only the best ``keep`` share moves to the
next, larger level, and so on to the full set; the cost is counted in images processed.

Everything a generation decides is written before the next begins (state JSON, the
fine-tuned supernet), so an interrupted search resumes from its last finished generation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UserError
from ..fileio import read_json, write_json_atomic

STATE_NAME = "evolve.json"
SUPERNET_NAME = "supernet_finetuned.pt"
Say = Callable[[str], None]


@dataclass(frozen=True)
class EvolveConfig:
    population: int = 16
    generations: int = 6
    parents: int = 6              # the best kept into the next generation (re-scored)
    mutate_prob: float = 0.2      # per layer, for every child
    finetune_steps: int = 40      # supernet steps between generations (0: a plain GA)
    finetune_lr: float = 0.01
    batch_size: int = 32
    bn_batches: int = 8
    levels: tuple[float, ...] = (1.0,)  # hierarchical proxy: validation share per level
    keep: float = 0.5             # share of a level's candidates promoted to the next
    smoothing: float = 0.5        # pseudo-count of every candidate in the region sampler
    seed: int = 0

    def __post_init__(self) -> None:
        if self.population < 2:
            raise UserError(f"--population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise UserError(f"--generations must be at least 1, got {self.generations}")
        if not 1 <= self.parents < self.population:
            raise UserError(f"--parents must be in [1, population), got {self.parents}")
        if self.finetune_steps < 0 or self.bn_batches < 0 or self.batch_size < 1:
            raise UserError("fine-tune steps and BN batches must be >= 0, batch size >= 1")
        if not 0 <= self.mutate_prob <= 1 or not 0 < self.keep <= 1 or self.finetune_lr <= 0:
            raise UserError("mutation probability in [0, 1], keep in (0, 1], lr > 0")
        lv = self.levels
        if not lv or any(not 0 < f <= 1 for f in lv) or list(lv) != sorted(lv) or lv[-1] != 1.0:
            raise UserError(f"--levels must rise to 1.0 (shares of the validation set), got "
                            f"{','.join(f'{f:g}' for f in lv)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = list(self.levels)
        return d


@dataclass
class Costs:
    """What the search spent: images through a network, optimizer steps, seconds."""

    eval_images: int = 0
    train_images: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    per_level: list = field(default_factory=list)


class Repair:
    """Latency feasibility through the table's additive layer costs."""

    def __init__(self, space: Any, table: Any, budget_ms: float) -> None:
        self.space = space
        if table.space_id and table.space_id != space.id:
            raise UserError(f"the device table is for space {table.space or '?'} "
                            f"({table.space_id}), the supernet for {space.name} ({space.id})")
        self.const, self.costs = table.layer_costs(space)
        self.budget = budget_ms
        self.choices = [list(layer.choices) for layer in space.layers]
        fastest = self.const + sum(float(np.min(c)) for c in self.costs)
        if not math.isfinite(budget_ms) or budget_ms <= 0:
            raise UserError(f"the latency budget must be a positive number of ms, got {budget_ms}")
        if fastest > budget_ms:
            raise UserError(f"no {space.name} network meets {budget_ms:g} ms on this table: the "
                            f"fastest one is predicted at {fastest:.4f} ms")

    def latency(self, genes: Sequence[int]) -> float:
        return self.const + sum(float(self.costs[l][g]) for l, g in enumerate(genes))

    def __call__(self, genes: list[int], rng: np.random.Generator) -> list[int]:
        genes = list(genes)
        while self.latency(genes) > self.budget + 1e-12:
            save = np.array([float(self.costs[l][g]) - float(np.min(self.costs[l]))
                             for l, g in enumerate(genes)])
            l = int(rng.choice(len(genes), p=save / save.sum()))
            cheaper = [i for i, c in enumerate(self.costs[l]) if c < self.costs[l][genes[l]]]
            genes[l] = int(rng.choice(cheaper))
        return genes

    def names(self, genes: Sequence[int]) -> tuple[str, ...]:
        return tuple(self.choices[l][g] for l, g in enumerate(genes))


def _score(net: Any, genes: Sequence[int], rep: Repair, data: Any, cfg: EvolveConfig,
           share: float, costs: Costs, seed: int) -> float:
    """Inherited-weight validation accuracy on the first ``share`` of the validation set."""
    from .loop import accuracy, recalibrate_bn
    from .supernet import extract_subnet

    sub = extract_subnet(net, rep.names(genes))
    bn = max(1, int(round(cfg.bn_batches * share))) if cfg.bn_batches else 0
    recalibrate_bn(sub, data.train_x, cfg.batch_size, bn, seed)
    n = max(1, int(round(len(data.val_y) * share)))
    costs.eval_images += n + bn * cfg.batch_size
    costs.evaluations += 1
    return accuracy(sub, data.val_x[:n], data.val_y[:n])


def score_population(net: Any, pop: list[list[int]], rep: Repair, data: Any,
                     cfg: EvolveConfig, costs: Costs, seed: int) -> list[tuple[int, float]]:
    """(level reached, score) per individual through the hierarchical proxy; an individual
    that reached a higher level ranks above one that did not."""
    result: dict[int, tuple[int, float]] = {}
    alive = list(range(len(pop)))
    net.eval()
    for lvl, share in enumerate(cfg.levels):
        before = costs.eval_images
        cache: dict[tuple[int, ...], float] = {}
        for i in alive:
            key = tuple(pop[i])
            if key not in cache:
                cache[key] = _score(net, pop[i], rep, data, cfg, share, costs, seed)
            result[i] = (lvl, cache[key])
        costs.per_level.append({"level": lvl, "share": share, "scored": len(alive),
                                "images": costs.eval_images - before})
        if lvl + 1 < len(cfg.levels):
            ranked = sorted(alive, key=lambda i: -result[i][1])
            alive = ranked[:max(cfg.parents, int(math.ceil(cfg.keep * len(alive))))]
    return [result[i] for i in range(len(pop))]


def region_sampler(pop: list[list[int]], rep: Repair, smoothing: float) -> list[np.ndarray]:
    """Per layer, the probability of each candidate in the population's region."""
    probs = []
    for l, names in enumerate(rep.choices):
        counts = np.full(len(names), smoothing, dtype=float)
        for g in pop:
            counts[g[l]] += 1.0
        probs.append(counts / counts.sum())
    return probs


def finetune_region(net: Any, pop: list[list[int]], rep: Repair, data: Any, cfg: EvolveConfig,
                    costs: Costs, seed: int) -> None:
    """``finetune_steps`` single-path steps on paths drawn from the population's region."""
    from .loop import sgd, train_steps

    probs = region_sampler(pop, rep, cfg.smoothing)

    def path(r) -> tuple[str, ...]:  # r: the step's random.Random (same on every rank)
        return tuple(rep.choices[l][_draw(p, r.random())] for l, p in enumerate(probs))

    opt = sgd(net.parameters(), cfg.finetune_lr)
    train_steps(net, data.train_x, data.train_y, opt, path, cfg.finetune_steps,
                cfg.batch_size, seed)
    costs.train_images += cfg.finetune_steps * cfg.batch_size


def _draw(p: np.ndarray, u: float) -> int:
    return int(min(np.searchsorted(np.cumsum(p), u, side="right"), len(p) - 1))


def _children(parents: list[list[int]], n: int, rep: Repair, cfg: EvolveConfig,
              rng: np.random.Generator) -> list[list[int]]:
    kids = []
    for _ in range(n):
        a, b = rng.choice(len(parents), 2, replace=len(parents) < 2)
        mask = rng.random(len(rep.choices)) < 0.5
        g = [parents[a][l] if mask[l] else parents[b][l] for l in range(len(rep.choices))]
        for l in range(len(g)):
            if rng.random() < cfg.mutate_prob:
                g[l] = int(rng.integers(len(rep.choices[l])))
        kids.append(rep(g, rng))
    return kids


def evolve(ck_path: "str | Path", table: Any, budget_ms: float, data: Any, out: "str | Path",
           cfg: EvolveConfig, say: Say = lambda s: None,
           progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Search one budget into ``out``; resumes from ``out/evolve.json`` when present.

    ``data`` is at the input size of the checkpoint's own space (a proxy-scaled supernet,
    EcoNAS, is searched at its proxy setting; its choices are the target space's, which the
    device table prices)."""
    from .checkpoint import load_checkpoint, save_checkpoint

    out = Path(out)
    ck = load_checkpoint(ck_path)
    space = ck.target
    rep = Repair(space, table, budget_ms)
    state_path = out / STATE_NAME
    net_path = out / SUPERNET_NAME
    key = {"supernet": str(Path(ck_path).absolute()), "space_id": space.id,
           "budget_ms": budget_ms, "config": cfg.to_dict(),
           "table": table.meta.get("date"), "data": data.describe()}
    costs = Costs()
    t0 = time.perf_counter()
    if state_path.is_file():
        st = read_json(state_path, "search state")
        if not isinstance(st, dict) or st.get("key") != key:
            raise UserError(f"{state_path} is a search with other settings (supernet, budget, "
                            "table, data or options); use another --out")
        if st.get("done"):
            say(f"{out.name}: finished before; reusing")
            return st
        gen0, pop, costs, history, rng = _resumed(st, state_path, cfg, rep)
        t0 -= costs.seconds
        net = (load_checkpoint(net_path).supernet() if net_path.is_file() and gen0 > 0
               else ck.supernet())
        say(f"{out.name}: resuming at generation {gen0}")
    else:
        gen0, history = 0, []
        rng = np.random.default_rng(cfg.seed)
        pop = [rep([int(rng.integers(len(c))) for c in rep.choices], rng)
               for _ in range(cfg.population)]
        net = ck.supernet()
    net.train(False)
    scores: list[tuple[int, float]] = []
    for gen in range(gen0, cfg.generations + 1):
        seed = cfg.seed * 1_000 + gen
        scores = score_population(net, pop, rep, data, cfg, costs, seed)
        order = sorted(range(len(pop)), key=lambda i: (-scores[i][0], -scores[i][1],
                                                       rep.latency(pop[i])))
        pop = [pop[i] for i in order]
        scores = [scores[i] for i in order]
        history.append(_generation(gen, pop, scores, rep, cfg))
        if progress:
            progress(f"evolving {budget_ms:g} ms", gen + 1, cfg.generations + 1)
        say(f"{out.name}: generation {gen}: best {scores[0][1]:.4f} "
            f"({rep.latency(pop[0]):.4f} ms)")
        if gen == cfg.generations:
            break
        parents = pop[:cfg.parents]
        if cfg.finetune_steps:
            net.train(True)
            finetune_region(net, pop, rep, data, cfg, costs, seed)
            net.train(False)
        pop = parents + _children(parents, cfg.population - cfg.parents, rep, cfg, rng)
        costs.seconds = time.perf_counter() - t0
        # the generation is decided: weights first, then the state that points at them
        if cfg.finetune_steps:
            save_checkpoint(net_path, replace(ck, model=net.state_dict(), optimizer=None,
                                              progress={**dict(ck.progress),
                                                        "evolve_generation": gen + 1}))
        write_json_atomic(state_path, _state(key, gen + 1, pop, rng, costs, history, False))
    costs.seconds = time.perf_counter() - t0
    if cfg.finetune_steps and not net_path.is_file():  # a single generation, no fine-tune yet
        save_checkpoint(net_path, replace(ck, model=net.state_dict(), optimizer=None))
    st = _state(key, cfg.generations, pop, rng, costs, history, True)
    st.update({"best": list(rep.names(pop[0])), "best_score": scores[0][1],
               "best_latency_ms": rep.latency(pop[0]), "space": space.name,
               "space_id": space.id, "budget_ms": budget_ms,
               "supernet_finetuned": str(net_path) if cfg.finetune_steps else None})
    _write_best(out, space, st)
    return st


def _write_best(out: Path, space: Any, st: dict[str, Any]) -> None:
    """The finished search: its best architecture, then the state that says it is done."""
    from ..arch import Architecture

    Architecture.of(space, st["best"]).save(out / "best_arch.json")
    write_json_atomic(out / STATE_NAME, st)


def _resumed(st: dict[str, Any], state_path: Path, cfg: EvolveConfig, rep: Repair
             ) -> tuple[int, list[list[int]], Costs, list[Any], np.random.Generator]:
    """(generation, population, costs, history, random state) of a saved search state."""
    try:
        gen0 = int(st["generation"])
        pop = [[int(x) for x in g] for g in st["population"]]
        if len(pop) != cfg.population or any(
                len(g) != len(rep.choices) or not all(0 <= x < len(c) for x, c in
                                                     zip(g, rep.choices)) for g in pop):
            raise ValueError("population")
        costs = Costs(**dict(st["costs"]))
        history = list(st["history"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{state_path} is damaged; use another --out") from None
    return gen0, pop, costs, history, _rng_in(st.get("rng"), str(state_path))


def _generation(gen: int, pop: list[list[int]], scores: list[tuple[int, float]], rep: Repair,
                cfg: EvolveConfig) -> dict[str, Any]:
    """The history entry of one scored generation (``pop`` sorted best first)."""
    return {"generation": gen, "best": list(rep.names(pop[0])),
            "best_score": scores[0][1], "best_latency_ms": rep.latency(pop[0]),
            "mean_full_score": float(np.mean([s for lv, s in scores
                                              if lv == len(cfg.levels) - 1])),
            "population": [list(rep.names(g)) for g in pop],
            "scores": [s for _, s in scores]}


def _state(key, gen, pop, rng, costs: Costs, history, done: bool) -> dict[str, Any]:
    return {"kind": "hwnas.evolve_state", "key": key, "generation": gen, "done": done,
            "population": [list(map(int, g)) for g in pop], "rng": _rng_out(rng),
            "costs": asdict(costs), "history": history}


def _rng_out(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as JSON: PCG64's 128-bit integers as text (the bounded JSON
    reader refuses integers of more than 30 digits)."""
    st = rng.bit_generator.state
    return {"bit_generator": st["bit_generator"],
            "state": {k: str(v) for k, v in st["state"].items()},
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def _rng_in(d: Any, where: str) -> np.random.Generator:
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = {"bit_generator": d["bit_generator"],
                                   "state": {k: int(v) for k, v in d["state"].items()},
                                   "has_uint32": int(d["has_uint32"]),
                                   "uinteger": int(d["uinteger"])}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError(f"{where} is damaged (its random state); use another --out") from None
    return rng
