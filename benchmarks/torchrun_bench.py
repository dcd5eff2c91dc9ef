"""Meta-training step time per sample, torchrun with 2 CPU processes
against one process (same global batch, seed and data), and whether the tables agree.

    python benchmarks/torchrun_bench.py [--repeats 2] [--epochs 3]

Each setting runs ``--repeats`` times, alternating, into fresh folders; the figure is the
meta-training seconds (rank 0's clock) divided by the samples it trained on. Nothing else
may load the CPU meanwhile (2-core host: two processes take both cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(out: Path, procs: int, epochs: int, batch: int) -> dict:
    argv = ["train", "--space", "tiny-32", "--data", "digits", "--proxy", "r16",
            "--epochs", str(epochs), "--finetune-steps", "1", "--later-paths", "1",
            "--batch-size", str(batch), "--threads", "1", "--out", str(out), "--json"]
    env = dict(os.environ, HWNAS_CACHE=str(out.parent / "cache"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    cmd = ([sys.executable, "-m", "hwnas"] if procs == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(procs), "-m", "hwnas"])
    r = subprocess.run(cmd + argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    d = json.loads(r.stdout)
    samples = d["data"]["train"] * epochs
    return {"procs": procs, "meta_train_s": d["seconds"]["meta_train"],
            "us_per_sample": 1e6 * d["seconds"]["meta_train"] / samples,
            "layers": d["layers"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", default="runs/bench_torchrun.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-torchrun-"))
    rows = []
    for k in range(args.repeats):
        for procs in (1, 2):
            r = train(tmp / f"p{procs}-{k}", procs, args.epochs, args.batch)
            rows.append(r)
            print(f"{procs} process(es), repeat {k + 1}: meta-training {r['meta_train_s']:.1f} s, "
                  f"{r['us_per_sample']:.0f} us per sample", flush=True)
    for procs in (1, 2):
        v = sorted(r["us_per_sample"] for r in rows if r["procs"] == procs)
        print(f"{procs} process(es): {v[0]:.0f} us per sample at best, {v[-1]:.0f} worst")
    one = [r for r in rows if r["procs"] == 1][0]["layers"]
    two = [r for r in rows if r["procs"] == 2][0]["layers"]
    diffs = [abs(a[c] - b[c]) for a, b in zip(one, two) for c in a]
    print(f"tables: same shape {[sorted(r) for r in one] == [sorted(r) for r in two]}; score "
          f"difference mean {sum(diffs) / len(diffs):.4f}, max {max(diffs):.4f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
