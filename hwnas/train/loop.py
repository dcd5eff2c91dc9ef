"""The training and evaluation loop shared by both PONAS stages, shrinking and validation.

Written so that multi-GPU training can slot in without touching the algorithms:
- batches come from a ``DataLoader`` built by :func:`make_loader`, which takes an optional
  ``sampler`` (a ``DistributedSampler``) and calls its ``set_epoch`` every epoch;
- the model is passed in, so a ``DistributedDataParallel`` wrapper (with
  ``find_unused_parameters=True``: a path leaves the other candidates idle) can replace it;
- the path of each step comes from a ``random.Random`` seeded by (seed, epoch, step), the
  same on every rank, so all replicas run the same sub-network in a step.
"""

from __future__ import annotations

import random
from typing import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

PathFn = Callable[[random.Random], "Sequence[str] | None"]  # None: a plain network
# (stage, done, total): the one shape of the library's progress callbacks
ProgressFn = Callable[[str, int, int], None]


def make_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                epoch: int = 0, sampler: Sampler | None = None, workers: int = 0,
                pin: bool = False) -> DataLoader:
    """A loader over in-memory tensors; shuffling is fixed by (seed, epoch), so ``workers``
    (worker processes building the batches) and ``pin`` (page-locked host memory, for
    asynchronous copies to a GPU) change where batches are made, never which they are."""
    ds = TensorDataset(x, y)
    opts = {"num_workers": workers, "pin_memory": pin and x.device.type == "cpu",
            "persistent_workers": False}
    if sampler is not None:
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=False, **opts)
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      drop_last=shuffle and len(y) > batch_size, **opts)


def step_rng(seed: int, epoch: int, step: int) -> random.Random:
    return random.Random(f"{seed}:{epoch}:{step}")


def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                path_fn: PathFn, seed: int, epoch: int,
                progress: ProgressFn | None = None, max_steps: int | None = None) -> float:
    """One pass (or ``max_steps`` steps) of single-path training; returns the mean loss."""
    import contextlib

    model.train()
    steps = len(loader) if max_steps is None else min(len(loader), max_steps)  # type: ignore[arg-type]
    loss_fn = nn.CrossEntropyLoss()
    total, n = 0.0, 0
    dev = next(model.parameters()).device
    # mixed precision where the device has it: bf16 autocast on CUDA (no loss scaling
    # needed); CPU training stays fp32
    bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()

    def amp():
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    for step, (xb, yb) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        path = path_fn(step_rng(seed, epoch, step))
        if xb.device != dev:  # host batches (loader workers, pinned): copied asynchronously
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with amp():
            loss = loss_fn(model(xb) if path is None else model(xb, path), yb)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(yb)
        n += len(yb)
        if progress is not None:
            progress(f"epoch {epoch}", step + 1, steps)
    return total / max(n, 1)


def train_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                optimizer: torch.optim.Optimizer, path_fn: PathFn, steps: int,
                batch_size: int, seed: int) -> None:
    """``steps`` single-path steps, cycling through epochs of the data as needed."""
    done, epoch = 0, 0
    while done < steps:
        loader = make_loader(x, y, batch_size, True, seed, epoch)
        if len(loader) == 0:  # pragma: no cover - empty data
            break
        train_epoch(model, loader, optimizer, path_fn, seed, epoch, max_steps=steps - done)
        done += min(len(loader), steps - done)
        epoch += 1


def calibration_batches(x: torch.Tensor, batch_size: int, batches: int, seed: int
                        ) -> list[torch.Tensor]:
    """The training images batch-norm recalibration runs on: ``batches`` batches of a
    permutation fixed by ``seed`` (a last batch of fewer than 2 images is dropped)."""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    out = []
    for b in range(batches):
        sel = idx[b * batch_size:(b + 1) * batch_size]
        if len(sel) < 2:
            break
        out.append(x[sel.to(x.device)])
    return out


@torch.no_grad()
def recalibrate_bn_on(net: nn.Module, inputs: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Reset every batch-norm statistic of ``net`` and re-estimate it as the plain average
    over ``inputs`` (train mode); returns ``net``'s output of each batch, which is what a
    later stage would have seen during the same recalibration."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    was_training = net.training
    net.train()
    dev = _device(net)
    outs = [net(b.to(dev, non_blocking=True)) for b in inputs]
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    net.train(was_training)
    return outs


def recalibrate_bn(net: nn.Module, x: torch.Tensor, batch_size: int, batches: int,
                   seed: int) -> None:
    """Re-estimate batch-norm statistics of ``net`` on training batches (one-shot practice:
    the shared statistics belong to no single path)."""
    if batches <= 0 or not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                               for m in net.modules()):
        return
    recalibrate_bn_on(net, calibration_batches(x, batch_size, batches, seed))


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``net(x)`` (eval mode) in [0, 1]."""
    net.eval()
    correct = 0
    dev = _device(net)
    for i in range(0, len(y), batch_size):
        out = net(x[i:i + batch_size].to(dev, non_blocking=True))
        correct += int((out.argmax(1) == y[i:i + batch_size].to(dev)).sum())
    return correct / max(len(y), 1)


def _device(net: nn.Module) -> torch.device:
    """Where ``net`` runs (data kept on the host with loader workers is moved per batch)."""
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def sgd(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 4e-5
        ) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
