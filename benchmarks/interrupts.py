"""Interrupt figures: kill real ``profile``, ``train`` and ``run`` processes at many moments
(SIGKILL and SIGINT alternating), run the same command again, and count the kill points
where something finished was lost or redone.

    python benchmarks/interrupts.py [--points 8] [--commands profile,train,run]

The moments are spread evenly over an uninterrupted run's working phase (from the first
write of its table or checkpoint to its end, measured first), with a seeded jitter. The
checks (each trial's ``ok``) are those of ``tests/interrupts.py``: every file on disk is
complete JSON at the kill; the resume exits 0; profile: every entry on disk before the
resume is unchanged after it and the table is complete; train: the final accuracy table
equals the uninterrupted run's; run: the supernet is untouched, the table's entries kept,
three engines written.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import interrupts as it  # noqa: E402
from hwnas.run.folder import RunFolder  # noqa: E402


def _moments(total_s: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [total_s * (k + rng.uniform(0.1, 0.9)) / n for k in range(n)]


def _sig(k: int) -> int:
    return signal.SIGKILL if k % 2 == 0 else signal.SIGINT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=8, help="kill points of profile and train")
    ap.add_argument("--run-points", type=int, default=4, help="kill points of run")
    ap.add_argument("--commands", default="profile,train,run")
    ap.add_argument("--json", default="runs/bench_interrupts.json")
    args = ap.parse_args()
    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-interrupts-"))
    cmds = args.commands.split(",")

    ref_layers = None
    train_ref = tmp / "train-ref"
    if "train" in cmds or "run" in cmds:
        _, train_s, out = it.reference([*it.TRAIN, "--out", train_ref / "train", "--json"],
                                       it.env_for(train_ref), train_ref / "train" / "supernet.pt")
        ref_layers = json.loads(out)["layers"]

    def record(command: str, k: int, at: float, r: dict, keys: tuple[str, ...], what: str) -> None:
        rows.append({"command": command, "ok": r["ok"], "after_s": r["after_s"],
                     "signal": r["signal"], "hit": r["hit"], "rc": r["rc"],
                     "resume_rc": r["resume_rc"], **{key: r[key] for key in keys}})
        print(f"{command} kill {k + 1} at {at:.1f} s ({r['signal']}): hit {r['hit']}, {what}, "
              f"resume rc {r['resume_rc']}, {'ok' if r['ok'] else 'LOST: ' + str(r)}", flush=True)

    if "profile" in cmds:
        _, total, _ = it.reference([*it.PROFILE, "--out", tmp / "pref" / "t.json"],
                                   it.env_for(tmp / "pref"), tmp / "pref" / "t.json")
        for k, at in enumerate(_moments(total, args.points, 1)):
            r = it.profile_trial(tmp / f"p{k}", at, _sig(k))
            record("profile", k, at, r, ("entries_before", "entries_after", "changed_after_resume"),
                   f"{r['entries_before']} entries on disk")
    if "train" in cmds:
        for k, at in enumerate(_moments(train_s, args.points, 2)):
            r = it.train_trial(tmp / f"t{k}", at, _sig(k), ref_layers)
            record("train", k, at, r, ("progress_at_kill", "resumed_from",
                                       "equal_to_uninterrupted"),
                   f"progress {r['progress_at_kill']}, resumed from {r['resumed_from']}")
    if "run" in cmds:
        # an uninterrupted run first (its own training), then kills with its train/ reused
        t0 = time.monotonic()
        first = it.hwnas(["run", "--quick", *it.RUN_TRAIN_ARGS, "--out",
                          tmp / "run-ref", "--json"], it.env_for(tmp / "run-ref-env"))
        assert first.returncode == 0, first.stderr[-1000:]
        first_s = time.monotonic() - t0
        ref = RunFolder.for_backend(tmp / "run-ref", "onnxruntime", "fp32")
        probe = RunFolder.for_backend(tmp / "run-probe", "onnxruntime", "fp32")
        shutil.copytree(ref.train_dir, probe.train_dir)
        _, run_s, _ = it.reference(["run", "--quick", "--out", probe.root, "--json"],
                                   it.env_for(tmp / "run-probe"), probe.device_table)
        print(f"run: first {first_s:.0f} s with training; {run_s:.0f} s "
              "from the device table's first write to the end, reusing train/", flush=True)
        for k, at in enumerate(_moments(run_s, args.run_points, 3)):
            r = it.run_trial(tmp / f"r{k}", ref.train_dir, at, _sig(k))
            record("run", k, at, r, ("supernet_unchanged", "table_entries_before",
                                     "table_entries_changed", "engines"),
                   f"table entries kept {r['table_entries_before']}")
    for c in cmds:
        rs = [r for r in rows if r["command"] == c]
        print(f"{c}: {len(rs)} kill points ({sum(r['hit'] for r in rs)} hit a running "
              f"process), {sum(r['ok'] for r in rs)} resumed with nothing lost or redone")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
