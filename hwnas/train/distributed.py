"""Training on a GPU and on several processes (``torchrun``), with PyTorch's own engines.

``torchrun --nproc-per-node N -m hwnas train ...`` starts N processes; each reads the
rendezvous from the environment torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``),
joins a process group (gloo on CPU, nccl on CUDA) and wraps the supernet in
``DistributedDataParallel``. What hwnas adds, and why by hand:

- **The same batches as one process.** Each global batch is the one a single process
  would draw (the same seeded permutation as :func:`hwnas.train.loop.make_loader`), split
  into equal shares, one per rank (:class:`ShardedBatches`). ``DistributedSampler`` shuffles
  by its own rule and pads or drops differently, so a 2-process run would not see the same
  batches as a 1-process run with the same global batch and seed.
- **The same path on every rank.** Paths come from ``step_rng(seed, epoch, step)``, equal
  on every rank, so DDP's all-reduce averages gradients of one sub-network
  (``find_unused_parameters=True``: the other candidates are idle in a step).
- **Rank 0 alone writes** checkpoints, the stage-2 state and the table; every rank resumes
  from the same checkpoint.
- **Stage 2 split by candidate**: rank r scores the candidates ``i % world == r`` of a layer
  (each score is a fine-tune of a copy and an evaluation, independent of the others) and
  the rows are gathered, so every rank picks the same best block.

Batch norm keeps per-rank statistics (``SyncBatchNorm`` runs on GPUs only), so a
multi-process table equals a single-process one within training noise, not bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import Sampler

from ..errors import UserError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"
    workers: int = 0  # DataLoader worker processes (0: batches built in this process)

    @property
    def data_on_device(self) -> bool:
        """Small in-memory sets move to the GPU once (no copies per batch); with loader
        workers the data stays on the host and batches travel from pinned memory."""
        return self.workers == 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


def setup(device: str = "cpu", workers: int = 0) -> Dist:
    """This process's place: alone, or one rank of a torchrun job (joins its group)."""
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device must be cpu or cuda, got {device!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 64:
        raise UserError(f"--workers must be an integer in [0, 64], got {workers!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to PyTorch here "
                        f"(torch {torch.__version__}); train with --device cpu")
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist(0, 1, device, workers)
    import torch.distributed as dist

    if not dist.is_available():
        raise UserError("this PyTorch build has no torch.distributed")
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if device == "cuda":
        if local >= torch.cuda.device_count():
            raise UserError(f"rank {local} has no GPU of its own ({torch.cuda.device_count()} "
                            "visible); start at most one process per GPU")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    dev = f"cuda:{local}" if device == "cuda" else "cpu"
    return Dist(dist.get_rank(), dist.get_world_size(), dev, workers)


def gather(d: Dist, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` alone)."""
    if not d.on:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.on:
        import torch.distributed as dist

        dist.barrier()


def wrap(d: Dist, net: torch.nn.Module) -> torch.nn.Module:
    """The module to train: DDP over ``net`` when distributed, else ``net`` itself."""
    if not d.on:
        return net
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [torch.device(d.device).index] if d.device.startswith("cuda") else None
    return DDP(net, device_ids=ids, find_unused_parameters=True)


class ShardedBatches(Sampler[int]):
    """Rank ``rank``'s share of each global batch of the single-process loader.

    The single process draws ``torch.randperm(n)`` from a generator seeded with
    ``seed * 100_003 + epoch`` and cuts it into batches of ``batch_size`` (the last,
    incomplete one dropped); rank r takes elements ``[r * b, (r + 1) * b)`` of each,
    ``b = batch_size // world``, so the ranks' shares of batch k are batch k."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int, seed: int) -> None:
        if batch_size % world:
            raise UserError(f"--batch-size {batch_size} must be a multiple of the number of "
                            f"processes ({world}): each takes an equal share of every batch")
        self.n, self.batch, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _perm(self) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        # a DataLoader draws its workers' base seed from its generator before the shuffle
        # sampler draws the permutation: the same draw here keeps the two in step (checked
        # against the real single-process loader in tests/test_distributed.py)
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        return torch.randperm(self.n, generator=gen).tolist()

    def _chunks(self, seq) -> Iterator[Any]:
        """This rank's share of each global batch of ``seq`` (as make_loader: the incomplete
        last batch is dropped when there is more than one batch)."""
        nb = self.n // self.batch if self.n > self.batch else 1
        share = self.batch // self.world
        lo, hi = self.rank * share, (self.rank + 1) * share
        for k in range(nb):
            yield seq[k * self.batch:(k + 1) * self.batch][lo:hi]

    def __iter__(self) -> Iterator[int]:
        for chunk in self._chunks(self._perm()):
            yield from chunk

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks(range(self.n)))
