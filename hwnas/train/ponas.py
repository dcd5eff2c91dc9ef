"""PONAS two-stage training of a supernet into an accuracy table.

Stage 1 (meta-training): the whole supernet is trained with uniform single-path sampling.
Optional PWSNAS shrinking rounds follow (drop the weakest operator per layer by the angle
metric, train on). Stage 2 (layer-wise fine-tuning): for layer ``l`` the earlier layers are
fixed to their chosen (best) blocks; each candidate of ``l`` is fine-tuned briefly (a copy
of the supernet: the candidate, the later layers and the head learn, the prefix is frozen)
while the later layers sample paths; it is scored by the mean validation accuracy over a
few later paths, the same paths for every candidate of the layer. The scores form the
:class:`~hwnas.tables.AccuracyTable`.

``prefix="sampled"`` is a variant for tables meant to rank *arbitrary* architectures: the
earlier layers are sampled like the later ones (a marginal score per candidate, with the
same context paths for every candidate of a layer). On tiny-32/digits it predicted the
real accuracy of random sub-networks better (Kendall tau 0.41 against 0.20 for the
chosen prefix, same supernet, 6 context paths, no fine-tuning).

Everything the run decides is written to the output folder as it goes (checkpoint after
every epoch and round, stage-2 scores after every layer), so an interrupted run resumes.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError
from ..fileio import read_json, write_json_atomic
from ..spaces import SearchSpace, save_space
from ..tables.accuracy import AccuracyTable
from .checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, save_checkpoint
from .data import DataSplit
from .distributed import Dist, ShardedBatches, barrier, gather, wrap
from .loop import (ProgressFn, accuracy, calibration_batches, make_loader, recalibrate_bn,
                   recalibrate_bn_on, sgd, train_epoch, train_steps)
from .proxy import Proxy
from .shrink import angle_scores, shrink_keep, shrink_supernet
from .supernet import Supernet, extract_subnet, sample_path, shared_key, unshare_supernet

TABLE_NAME = "accuracy_table.json"
SPACE_NAME = "space.json"
STAGE2_NAME = "stage2.json"



@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10             # meta-training epochs of the full setting
    batch_size: int = 64
    lr: float = 0.1
    finetune_steps: int = 10     # stage 2, per candidate
    finetune_lr: float = 0.02
    later_paths: int = 3         # stage 2, later paths each candidate is scored on
    prefix: str = "chosen"       # stage 2 earlier layers: "chosen" (PONAS) or "sampled"
    bn_batches: int = 4          # batch-norm recalibration batches before each evaluation
    shrink_rounds: int = 0
    shrink_epochs: int = 1       # training after each shrinking round
    unshare_epochs: int = 0      # PWSNAS's less weight sharing: > 0 gives every block one
    #                              weight copy per previous-layer choice after shrinking and
    #                              trains that many epochs (0: off)
    angle_paths: int = 16
    val_fraction: float = 0.2
    test_fraction: float = 0.0   # held out from training and from the table (hwnas run: 0.15)
    seed: int = 0
    proxy: Proxy = field(default_factory=Proxy)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "later_paths"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("finetune_steps", "bn_batches", "shrink_rounds", "shrink_epochs",
                     "unshare_epochs"):
            if getattr(self, name) < 0:
                raise UserError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.prefix not in ("chosen", "sampled"):
            raise UserError(f"prefix must be 'chosen' or 'sampled', got {self.prefix!r}")
        from ..limits import check_rate, check_seed

        check_rate(self.lr, "the learning rate")  # inf or nan would fail only when results are written
        check_rate(self.finetune_lr, "the fine-tuning learning rate")
        check_seed(self.seed)

    @property
    def meta_epochs(self) -> int:
        return max(1, int(round(self.epochs * self.proxy.epochs)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["proxy"] = self.proxy.to_dict()
        return d

    # settings added later, with the value that reproduces what a run before them did
    ADDED = {"test_fraction": 0.0, "unshare_epochs": 0}

    def same_as(self, saved: Mapping[str, Any]) -> bool:
        """Whether ``saved`` (a checkpoint's or table's config) is this configuration."""
        return {**self.ADDED, **dict(saved)} == self.to_dict()


@dataclass(frozen=True)
class TrainResult:
    table: AccuracyTable
    table_path: Path
    checkpoint_path: Path
    space_path: Path | None      # the shrunk space file, when shrinking ran
    chosen: tuple[str, ...]      # the per-layer best blocks of stage 2
    seconds: Mapping[str, float]
    resumed_from: Mapping[str, Any] | None = None  # progress found on disk, None: fresh start


def _lr(cfg: TrainConfig, epoch: int, total: int) -> float:
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(total, 1)))


def evaluate_path(net: Supernet, choices: Sequence[str], data: DataSplit, cfg: TrainConfig,
                  seed: int) -> float:
    """Validation accuracy of one path with inherited weights and recalibrated BN."""
    sub = extract_subnet(net, choices)
    recalibrate_bn(sub, data.train_x, cfg.batch_size, cfg.bn_batches, seed)
    return accuracy(sub, data.val_x, data.val_y)


# the most memory the cached prefix features of one context path may take (bytes); above
# it stage 2 evaluates every path whole, as :func:`evaluate_path` does
PREFIX_CACHE_BYTES = 1 << 30


class PrefixFeatures:
    """What the layers before ``l`` of one path compute during :func:`evaluate_path`, kept
    so that every candidate of layer ``l`` runs only its own part of the network.

    Exact, not an approximation: in a recalibration the statistics of a batch-norm depend
    only on what runs before it, so the prefix's statistics, its outputs on the calibration
    batches (train mode) and on the validation images (eval mode) are the same for every
    candidate of layer ``l`` that shares the prefix. On tiny-32 the stem and the first
    layers run at the highest resolution, so stage 2 (without fine-tuning: the weights do
    not change between candidates) does about half the work. No library does this: it
    rests on the weight-sharing supernet's layer structure."""

    def __init__(self, net: Supernet, path: Sequence[str], l: int, data: DataSplit,
                 cfg: TrainConfig, seed: int) -> None:
        sub = extract_subnet(net, path)
        prefix = torch.nn.Sequential(sub.stem, sub.fixed, *sub.layers[:l])
        batches = calibration_batches(data.train_x, cfg.batch_size, cfg.bn_batches, seed)
        self.l = l
        self.calibration = recalibrate_bn_on(prefix, batches) if cfg.bn_batches > 0 else []
        with torch.no_grad():
            prefix.eval()
            self.val = torch.cat([prefix(data.val_x[i:i + 256])
                                  for i in range(0, len(data.val_x), 256)]) \
                if len(data.val_x) else data.val_x

    @staticmethod
    def fits(net: Supernet, path: Sequence[str], l: int, data: DataSplit, cfg: TrainConfig
             ) -> bool:
        """Whether the cached features stay under :data:`PREFIX_CACHE_BYTES`."""
        sub = extract_subnet(net, path).eval()
        with torch.no_grad():
            one = torch.nn.Sequential(sub.stem, sub.fixed, *sub.layers[:l])(data.val_x[:1])
        images = len(data.val_x) + cfg.batch_size * cfg.bn_batches
        return one.numel() * one.element_size() * images <= PREFIX_CACHE_BYTES

    def accuracy(self, net: Supernet, path: Sequence[str], data: DataSplit) -> float:
        """:func:`evaluate_path` of ``path`` (which shares this prefix) from layer ``l`` on."""
        sub = extract_subnet(net, path)
        suffix = torch.nn.Sequential(*sub.layers[self.l:], sub.head)
        if self.calibration:
            recalibrate_bn_on(suffix, self.calibration)
        return accuracy(suffix, self.val, data.val_y)


class _Run:
    """State of one training run in one output folder (never global, never on the net)."""

    def __init__(self, target: SearchSpace, data: DataSplit, out: Path, cfg: TrainConfig,
                 progress: ProgressFn | None, dist: Dist = Dist()) -> None:
        self.dist = dist
        if dist.data_on_device:
            data = data.to(dist.device)
        self.target, self.data, self.out, self.cfg = target, data, out, cfg
        self.progress = (progress or (lambda *_: None)) if dist.main else (lambda *_: None)
        self.ck_path = out / CHECKPOINT_NAME
        self.seconds: dict[str, float] = {}
        self.train = data.subsample(cfg.proxy.samples, cfg.seed)

    def loader(self, epoch: int):
        """This process's batches of ``epoch`` (its share of each global batch under torchrun)."""
        cfg, d = self.cfg, self.dist
        x, y = self.train.train_x, self.train.train_y
        io = {"workers": d.workers, "pin": d.device.startswith("cuda")}
        if not d.on:
            return make_loader(x, y, cfg.batch_size, True, cfg.seed, epoch, **io)
        return make_loader(x, y, cfg.batch_size // d.world, True, cfg.seed, epoch,
                           sampler=ShardedBatches(len(y), cfg.batch_size, d.rank, d.world,
                                                  cfg.seed), **io)

    # ------------------------------------------------------------ checkpoint
    def start(self) -> tuple[Supernet, dict[str, torch.Tensor], dict[str, Any], dict | None]:
        space = self.cfg.proxy.apply(self.target)
        if self.ck_path.exists():
            ck = load_checkpoint(self.ck_path)
            if ck.target.id != self.target.id and ck.progress.get("base_target") != self.target.id:
                raise UserError(f"{self.ck_path} is a checkpoint for space {ck.target.name} (id "
                                f"{ck.target.id}), not {self.target.name} (id {self.target.id}); "
                                "use another --out folder")
            if not self.cfg.same_as(ck.config):
                raise UserError(f"{self.ck_path} was trained with other settings; resume with the "
                                "same options or use another --out folder")
            self.target = ck.target
            dev = self.dist.device
            return (ck.supernet().to(dev), {k: v.to(dev) for k, v in ck.init.items()},
                    dict(ck.progress), dict(ck.optimizer or {}) or None)
        torch.manual_seed(self.cfg.seed)
        net = Supernet(space).to(self.dist.device)
        init = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return net, init, {"meta_epoch": 0, "shrink_round": 0, "base_target": self.target.id}, None

    def save(self, net: Supernet, init: Mapping[str, torch.Tensor], progress: Mapping[str, Any],
             opt: torch.optim.Optimizer | None) -> None:
        if not self.dist.main:  # rank 0 alone writes; the others wait for it
            barrier(self.dist)
            return
        save_checkpoint(self.ck_path, Checkpoint(net.space, self.target, self.cfg.to_dict(),
                                                 dict(progress), net.state_dict(), dict(init),
                                                 opt.state_dict() if opt is not None else None))
        barrier(self.dist)

    # --------------------------------------------------------------- stage 1
    def meta_train(self, net: Supernet, init: Mapping[str, torch.Tensor], prog: dict[str, Any],
                   opt_state: dict | None) -> None:
        cfg, total = self.cfg, self.cfg.meta_epochs
        model = wrap(self.dist, net)
        opt = sgd(net.parameters(), cfg.lr)
        if opt_state:
            try:
                opt.load_state_dict(opt_state)
            except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
                raise UserError(f"{self.ck_path}: its optimizer state does not fit the supernet "
                                f"({exc.__class__.__name__}); use another --out folder") from None
        steps = len(self.loader(0))
        t0 = time.perf_counter()
        for epoch in range(prog["meta_epoch"], total):
            for g in opt.param_groups:
                g["lr"] = _lr(cfg, epoch, total)
            loader = self.loader(epoch)

            def tick(_stage: str, step: int, _steps: int, before: int = epoch * steps) -> None:
                self.progress("meta-training", before + step, total * steps)

            train_epoch(model, loader, opt, lambda r: sample_path(net.space, r), cfg.seed, epoch,
                        progress=tick)
            prog["meta_epoch"] = epoch + 1
            self.save(net, init, prog, opt)
        self.seconds["meta_train"] = time.perf_counter() - t0

    # -------------------------------------------------------------- shrinking
    def shrink(self, net: Supernet, init: dict[str, torch.Tensor], prog: dict[str, Any]
               ) -> Supernet:
        cfg = self.cfg
        t0 = time.perf_counter()
        for rnd in range(prog["shrink_round"], cfg.shrink_rounds):
            scores = angle_scores(net, init, cfg.angle_paths, cfg.seed + rnd)
            keep = shrink_keep(net.space, scores)
            net, self.target = shrink_supernet(net, keep, self.target)
            init = {k: init[k] for k in net.state_dict()}
            self._train_on(net, [10_000 + rnd * 100 + e for e in range(cfg.shrink_epochs)])
            prog["shrink_round"] = rnd + 1
            self.save(net, init, prog, None)
            self.progress("shrinking", rnd + 1, cfg.shrink_rounds)
        self.seconds["shrink"] = time.perf_counter() - t0
        return net

    # ------------------------------------------------- less weight sharing
    def unshare(self, net: Supernet, init: Mapping[str, torch.Tensor], prog: dict[str, Any]
                ) -> Supernet:
        """PWSNAS's second strategy after shrinking: every block gets one weight copy per
        choice of the layer before it (:func:`unshare_supernet`), then ``unshare_epochs``
        epochs of single-path training let the copies part."""
        cfg = self.cfg
        if cfg.unshare_epochs == 0:
            return net
        t0 = time.perf_counter()
        if not net.unshared:
            net = unshare_supernet(net)
            init = {k: init[shared_key(k)] for k in net.state_dict() if shared_key(k) in init}
            prog.update(unshared=True, unshare_epoch=0)

        base = 20_000  # epoch numbers of their own: batches and paths unlike meta-training's

        def done(epoch: int) -> None:
            prog["unshare_epoch"] = epoch - base + 1
            self.save(net, init, prog, None)
            self.progress("unsharing", prog["unshare_epoch"], cfg.unshare_epochs)

        start = int(prog.get("unshare_epoch", 0))
        self._train_on(net, range(base + start, base + cfg.unshare_epochs), done)
        self.seconds["unshare"] = time.perf_counter() - t0
        return net

    def _train_on(self, net: Supernet, epochs: Sequence[int], after=None) -> None:
        """Single-path training at a tenth of the meta-training rate, one pass per epoch
        number (which fixes its batches and paths); ``after(epoch)`` after each."""
        opt = sgd(net.parameters(), self.cfg.lr * 0.1)
        model = wrap(self.dist, net)
        for epoch in epochs:
            train_epoch(model, self.loader(epoch), opt, lambda r: sample_path(net.space, r),
                        self.cfg.seed, epoch)
            if after is not None:
                after(epoch)

    # --------------------------------------------------------------- stage 2
    def layerwise(self, net: Supernet) -> tuple[list[dict[str, float]], list[str]]:
        cfg, space = self.cfg, net.space
        state_path = self.out / STAGE2_NAME
        key = {"space_id": space.id, "config": cfg.to_dict()}
        rows: list[dict[str, float]] = []
        chosen: list[str] = []
        if state_path.exists():
            saved = read_json(state_path, "stage-2 progress")
            if isinstance(saved, dict) and saved.get("key") == key:
                rows, chosen = list(saved["rows"]), list(saved["chosen"])
                ok = (len(rows) == len(chosen) <= len(space.layers) and all(
                    isinstance(r, dict) and isinstance(c, str) and c in r
                    for r, c in zip(rows, chosen)))
                if not ok:
                    raise UserError(f"{state_path} is damaged; remove it to redo stage 2")
        self.stage2_resumed = len(rows)
        total = sum(len(layer.choices) for layer in space.layers)
        done = sum(len(r) for r in rows)
        t0 = time.perf_counter()
        for l in range(len(rows), len(space.layers)):
            rng = random.Random(f"later:{cfg.seed}:{l}")
            contexts = [sample_path(space, rng) for _ in range(cfg.later_paths)]
            if cfg.prefix == "chosen":
                contexts = [tuple(chosen) + p[l:] for p in contexts]
            d = self.dist
            # under torchrun: this rank's share of the layer
            share = [c for i, c in enumerate(space.layers[l].choices) if i % d.world == d.rank]
            if cfg.finetune_steps == 0 and share and \
                    PrefixFeatures.fits(net, contexts[0], l, self.data, cfg):
                mine = self._score_shared_prefix(net, l, share, contexts, done, total)
                done += d.world * len(share)
            else:
                mine = {}
                for c in share:
                    mine[c] = self._score_candidate(net, chosen, l, c, contexts)
                    done += d.world
                    self.progress("layer-wise fine-tuning", min(done, total), total)
            got = {c: v for part in gather(d, mine) for c, v in part.items()}
            row = {c: got[c] for c in space.layers[l].choices}
            best = max(space.layers[l].choices, key=lambda c: (row[c], -space.layers[l].choices.index(c)))
            rows.append(row)
            chosen.append(best)
            if self.dist.main:
                write_json_atomic(state_path, {"key": key, "rows": rows, "chosen": chosen})
        self.seconds["layerwise"] = time.perf_counter() - t0
        return rows, chosen

    def _score_shared_prefix(self, net: Supernet, l: int, share: Sequence[str],
                             contexts: Sequence[Sequence[str]], done: int, total: int
                             ) -> dict[str, float]:
        """:meth:`_score_candidate` without fine-tuning, every candidate of ``share`` at once:
        each context path's prefix runs once (:class:`PrefixFeatures`), the same sums."""
        sums = dict.fromkeys(share, 0.0)
        for k, p in enumerate(contexts):
            feats = PrefixFeatures(net, p, l, self.data, self.cfg, self.cfg.seed + k)
            for c in share:
                sums[c] += feats.accuracy(net, tuple(p[:l]) + (c,) + tuple(p[l + 1:]), self.data)
            step = (k + 1) * len(share) * self.dist.world // len(contexts)
            self.progress("layer-wise fine-tuning", min(done + step, total), total)
        return {c: v / len(contexts) for c, v in sums.items()}

    def _score_candidate(self, net: Supernet, prefix: Sequence[str], l: int, c: str,
                         contexts: Sequence[Sequence[str]]) -> float:
        cfg = self.cfg
        chosen = cfg.prefix == "chosen"
        fixed = (tuple(prefix) if chosen else (None,) * l) + (c,)
        tuned = copy.deepcopy(net)
        if cfg.finetune_steps > 0:
            frozen = [tuned.stem, tuned.fixed]
            if chosen:
                frozen += [tuned.block(i, prefix) for i in range(l)]
            for m in frozen:
                m.requires_grad_(False)
            opt = sgd([p for p in tuned.parameters() if p.requires_grad], cfg.finetune_lr)
            seed = cfg.seed * 1000 + l + 1  # the same batches for every candidate of layer l
            train_steps(tuned, self.train.train_x, self.train.train_y, opt,
                        lambda r: sample_path(tuned.space, r, fixed), cfg.finetune_steps,
                        cfg.batch_size, seed)
        return sum(evaluate_path(tuned, tuple(p[:l]) + (c,) + tuple(p[l + 1:]), self.data, cfg,
                                 cfg.seed + k)
                   for k, p in enumerate(contexts)) / len(contexts)


def train_accuracy_table(space: SearchSpace, data: DataSplit, out_dir: "str | Path",
                         cfg: TrainConfig = TrainConfig(),
                         progress: ProgressFn | None = None, dist: Dist = Dist()
                         ) -> TrainResult:
    """The whole run: meta-train, shrink (optional), layer-wise fine-tune, write the table.

    ``data`` must be at the proxy space's input size (see :func:`data_for`); ``dist`` is
    this process's place in a torchrun job (:func:`hwnas.train.distributed.setup`).
    """
    out = Path(out_dir)
    from ..fileio import folder_lock

    # a second train into --out is refused (rank 0 holds the lock for a torchrun job, and
    # tells the others, so no rank waits at a barrier for one that has given up)
    lock, err = None, None
    if dist.main:
        try:
            lock = folder_lock(out, "training folder")
        except UserError as exc:
            err = str(exc)
    errors = [e for e in gather(dist, err) if e]
    if errors:
        raise UserError(errors[0])
    try:
        return _train(space, data, out, cfg, progress, dist)
    finally:
        if lock is not None:
            lock.release()


def _train(space: SearchSpace, data: DataSplit, out: Path, cfg: TrainConfig,
           progress: ProgressFn | None, dist: Dist = Dist()) -> TrainResult:
    run = _Run(space, data, out, cfg, progress, dist)
    existed = run.ck_path.exists()
    net, init, prog, opt_state = run.start()
    resumed = ({"meta_epoch": prog.get("meta_epoch", 0), "shrink_round": prog.get("shrink_round", 0)}
               if existed else None)
    run.meta_train(net, init, prog, opt_state)
    net = run.shrink(net, init, prog)
    net = run.unshare(net, init, prog)
    rows, chosen = run.layerwise(net)
    space_path = save_space(run.target, out / SPACE_NAME) if cfg.shrink_rounds else None
    provenance = {
        "method": "ponas-two-stage", "data": data.source, "train_samples": len(run.train.train_y),
        "val_samples": len(data.val_y), "proxy": cfg.proxy.to_dict(), "proxy_tag": cfg.proxy.tag(),
        "epochs": cfg.meta_epochs, "finetune_steps": cfg.finetune_steps,
        "later_paths": cfg.later_paths, "prefix": cfg.prefix, "shrink_rounds": cfg.shrink_rounds, "seed": cfg.seed,
        "unshare_epochs": cfg.unshare_epochs,
        "space": run.target.name, "space_id": run.target.id, "trained_space_id": net.space.id,
        "score": "validation accuracy (fraction), mean over context paths",
        "chosen": chosen, "seconds": {k: round(v, 2) for k, v in run.seconds.items()},
        "torch": torch.__version__,
        "config": cfg.to_dict(),  # the checkpoint's config: validate-table checks the pair
        "processes": dist.world, "device": dist.device.split(":")[0],
    }
    table = AccuracyTable.from_rows(run.target, rows, provenance)
    table_path = out / TABLE_NAME
    if dist.main:
        table.save(table_path)
    barrier(dist)
    if resumed is not None:
        resumed["stage2_layers"] = run.stage2_resumed
    return TrainResult(table, table_path, run.ck_path, space_path, tuple(chosen),
                       dict(run.seconds), resumed)


def data_for(space: SearchSpace, ref: str, cfg: TrainConfig) -> DataSplit:
    """Load ``ref`` at the input size of the space ``cfg``'s proxy trains on."""
    from .data import load_data

    trained = cfg.proxy.apply(space)
    return load_data(ref, trained.input, trained.classes, cfg.seed, cfg.val_fraction,
                     cfg.test_fraction)
