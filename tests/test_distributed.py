"""Supernet training under torchrun (DistributedDataParallel, gloo on CPU).

A 2-process run must see the same global batches as a 1-process run with the same global
batch and seed, and end in a table of the same shape, equal within training noise (batch
norm keeps per-rank statistics on CPU); rank 0 alone writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--space", "tiny-32", "--data", "digits", "--proxy", "r8,s0.3,e1",
         "--epochs", "2", "--finetune-steps", "2", "--later-paths", "1", "--batch-size", "32",
         "--threads", "1", "--json"]


@pytest.mark.parametrize("n,batch,world", [(37, 8, 2), (100, 32, 4), (64, 32, 2)])
def test_sharded_batches_are_the_single_process_batches(n, batch, world):
    from hwnas.train.distributed import ShardedBatches
    from hwnas.train.loop import make_loader

    x = torch.arange(n).float()[:, None]
    y = torch.arange(n)
    for epoch in (0, 3):
        single = [b[1].tolist() for b in make_loader(x, y, batch, True, 5, epoch)]
        shares = []
        for r in range(world):
            s = ShardedBatches(n, batch, r, world, 5)
            shares.append([b[1].tolist() for b in make_loader(x, y, batch // world, True, 5,
                                                              epoch, sampler=s)])
        assert [sum((shares[r][k] for r in range(world)), []) for k in range(len(single))] \
            == single
        assert all(len(s) == len(single) for s in shares)


def test_batch_not_a_multiple_of_processes_is_refused():
    from hwnas.errors import UserError
    from hwnas.train.distributed import ShardedBatches

    with pytest.raises(UserError, match="multiple of the number of processes"):
        ShardedBatches(100, 30, 0, 4, 0)


def test_cuda_without_a_gpu_is_one_line(run_cli, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    rc, _, err = run_cli("train", "--space", "tiny-32", "--out", tmp_path / "o", "--device", "cuda")
    assert rc == 2 and "no CUDA GPU" in err and len(err.strip().splitlines()) == 1


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, HWNAS_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _hwnas(argv, tmp: Path, procs: int = 1) -> subprocess.CompletedProcess:
    cmd = ([sys.executable, "-m", "hwnas"] if procs == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(procs), "-m", "hwnas"])
    r = subprocess.run(cmd + [str(a) for a in argv], cwd=ROOT, env=_env(tmp),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.heavy
def test_two_process_stage_two_equals_one_process_exactly(tmp_path):
    """Stage 2 split across 2 ranks gives exactly the 1-process table: each candidate's score
    is a seeded fine-tune of a copy and an evaluation, whichever rank computes it. The
    2-process job resumes the 1-process run's finished meta-training (not redone)."""
    import shutil

    _hwnas([*TRAIN, "--out", tmp_path / "one"], tmp_path)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    for f in ("accuracy_table.json", "stage2.json", ".hwnas.lock"):
        (tmp_path / "two" / f).unlink(missing_ok=True)
    ck = _sha(tmp_path / "two" / "supernet.pt")
    two = _hwnas([*TRAIN, "--out", tmp_path / "two"], tmp_path, procs=2)
    a = json.loads((tmp_path / "one" / "accuracy_table.json").read_text())
    b = json.loads((tmp_path / "two" / "accuracy_table.json").read_text())
    assert b["provenance"]["processes"] == 2 and a["provenance"]["processes"] == 1
    assert b["layers"] == a["layers"] and b["provenance"]["chosen"] == a["provenance"]["chosen"]
    assert _sha(tmp_path / "two" / "supernet.pt") == ck          # meta-training not redone
    assert two.stdout.count('"table"') == 1                      # rank 0 alone reported
    assert json.loads(two.stdout)["resumed_from"]["meta_epoch"] == 2


@pytest.mark.slow
def test_two_process_meta_training_within_seed_noise(tmp_path):
    """From scratch, 2 processes against 1 (same global batch and seed): the same table
    shape, and no further from it than a 1-process run with another seed is (batch norm
    keeps per-rank statistics on CPU, so not bit for bit)."""
    runs = {}
    for name, procs, seed in (("one", 1, 0), ("two", 2, 0), ("other-seed", 1, 1)):
        _hwnas([*TRAIN, "--out", tmp_path / name, "--seed", seed], tmp_path, procs)
        runs[name] = json.loads((tmp_path / name / "accuracy_table.json").read_text())["layers"]

    def gap(x, y):
        return sum(abs(rx[c] - ry[c]) for rx, ry in zip(x, y) for c in rx) / sum(map(len, x))

    assert [sorted(r) for r in runs["one"]] == [sorted(r) for r in runs["two"]]
    assert gap(runs["one"], runs["two"]) <= 1.5 * gap(runs["one"], runs["other-seed"])


def test_loader_workers_build_the_same_batches(tmp_path):
    """Worker processes (and pinned memory, a no-op without CUDA) change where batches are
    built, not which: the same samples in the same order as in-process loading. Run in a
    child process: forking loader workers from the test process (torch's threads already
    started by earlier tests) can leave it to die later with a segmentation fault."""
    code = (
        "import torch, json\n"
        "from hwnas.train.loop import make_loader\n"
        "x = torch.arange(200, dtype=torch.float32).reshape(100, 2); y = torch.arange(100)\n"
        "out = []\n"
        "for epoch in (0, 1):\n"
        "    a = [b[1].tolist() for b in make_loader(x, y, 16, True, 7, epoch)]\n"
        "    w = [b[1].tolist() for b in make_loader(x, y, 16, True, 7, epoch, workers=2, pin=True)]\n"
        "    out.append([a == w, len(a)])\n"
        "print(json.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    assert json.loads(r.stdout.strip().splitlines()[-1]) == [[True, 6], [True, 6]]


@pytest.mark.slow
def test_train_with_loader_workers_gives_the_same_table(run_cli, tmp_path):
    args = ["train", "--space", "tiny-32", "--data", "digits", "--proxy", "c0.25,r8,s0.15,e1",
            "--epochs", "1", "--finetune-steps", "1", "--later-paths", "1", "--batch-size", "32",
            "--threads", "1", "--json"]
    rc, _, err = run_cli(*args, "--out", tmp_path / "a")
    assert rc == 0, err
    rc, _, err = run_cli(*args, "--out", tmp_path / "b", "--workers", "2")
    assert rc == 0, err
    import json

    ta = json.loads((tmp_path / "a" / "accuracy_table.json").read_text())
    tb = json.loads((tmp_path / "b" / "accuracy_table.json").read_text())
    assert ta["layers"] == tb["layers"]
    rc, _, err = run_cli(*args, "--out", tmp_path / "c", "--workers", "-1")
    assert rc == 2 and "--workers" in err
