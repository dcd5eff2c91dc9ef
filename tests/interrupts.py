"""Kill a real ``hwnas`` process at a moment, run the same command again, and report what
survived. Used by ``tests/test_interrupts.py`` (a few kill points per command)
and ``benchmarks/interrupts.py`` (many, with the counts quoted in RESULTS.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def hwnas(argv: list[str], env: dict[str, str], timeout: float = 900
          ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas", *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def interrupted(argv: list[str], env: dict[str, str], after_s: float, sig: int,
                once: Path | None = None) -> dict[str, Any]:
    """Start ``hwnas argv``, send ``sig`` ``after_s`` seconds after ``once`` appears on disk
    (after the start without it) to its process group, as a terminal's Ctrl-C does; wait.
    ``once`` (the table, the first checkpoint) puts the kill where finished work is at
    stake, not in the start-up. Returns exit code, stderr tail, whether it was hit."""
    p = subprocess.Popen([sys.executable, "-m", "hwnas", *map(str, argv)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    while once is not None and not once.exists() and p.poll() is None:
        time.sleep(0.01)
    t0 = time.monotonic()
    while time.monotonic() - t0 < after_s and p.poll() is None:
        time.sleep(0.02)
    hit = p.poll() is None
    if hit:
        os.killpg(p.pid, sig)
    out, err = p.communicate(timeout=600)
    return {"rc": p.returncode, "hit": hit, "stderr": err[-2000:], "after_s": after_s,
            "signal": signal.Signals(sig).name}


def reference(argv: list[str], env: dict[str, str], once: Path) -> tuple[float, float, str]:
    """Run ``hwnas argv`` uninterrupted: (seconds in all, seconds after ``once`` appeared,
    stdout), so kill moments can be drawn where the work is."""
    p = subprocess.Popen([sys.executable, "-m", "hwnas", *map(str, argv)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    seen = None
    while p.poll() is None:
        if seen is None and once.exists():
            seen = time.monotonic()
        time.sleep(0.01)
    out, err = p.communicate()
    if p.returncode != 0:
        raise AssertionError(err[-1500:])
    end = time.monotonic()
    return end - t0, end - (seen or end), out


def measured(entry: Any) -> Any:
    """An entry's measured fields: ``ref_ms`` is derived (its ratio to the reference graph
    times the table's final reference floor, recomputed by every finishing run), so it may
    change on a resume while nothing is measured again."""
    return {k: v for k, v in entry.items() if k != "ref_ms"} if isinstance(entry, dict) else entry


def file_digest(p: Path) -> str | None:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def read_valid_json(p: Path) -> Any:
    """The file must be absent or complete JSON: a kill never leaves half a file."""
    if not p.exists():
        return None
    return json.loads(p.read_text())


def env_for(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HWNAS_CACHE"] = str(tmp / "cache")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


# ------------------------------------------------------------------ profile
PROFILE = ["profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
           "--calibration-nets", "2"]
# the table appears on disk with its first finished entries; measuring goes on from there


def profile_trial(tmp: Path, after_s: float, sig: int) -> dict[str, Any]:
    """Interrupt a profile run, check the table on disk, resume, check nothing finished was
    re-measured (every entry on disk before the resume is unchanged after it)."""
    env, out = env_for(tmp), tmp / "table.json"
    r = interrupted([*PROFILE, "--out", out], env, after_s, sig, once=out)
    before = read_valid_json(out)
    resume = hwnas([*PROFILE, "--out", out, "--resume", "--json"], env)
    after = read_valid_json(out)
    kept = before["entries"] if before else {}
    lost = [k for k, v in kept.items() if measured(after["entries"].get(k)) != measured(v)]
    complete = (after or {}).get("meta", {}).get("status")
    return {**r, "ok": resume.returncode == 0 and complete == "complete" and not lost,
            "entries_before": len(kept), "resume_rc": resume.returncode,
            "finished_before": (before or {}).get("meta", {}).get("status") == "complete",
            "resume_err": resume.stderr[-1000:], "complete": complete,
            "changed_after_resume": lost, "entries_after": len((after or {}).get("entries", {}))}


# -------------------------------------------------------------------- train
TRAIN = ["train", "--space", "tiny-32", "--data", "digits", "--proxy", "c0.25,r8,s0.15,e1",
         "--epochs", "3", "--finetune-steps", "1", "--later-paths", "1", "--batch-size", "32",
         "--threads", "1"]


def _progress(ck: Path) -> dict[str, Any] | None:
    if not ck.is_file():
        return None
    import torch

    d = torch.load(ck, map_location="cpu", weights_only=True)
    return json.loads(d["progress"])


def train_trial(tmp: Path, after_s: float, sig: int, reference: dict | None) -> dict[str, Any]:
    """Interrupt a training run, resume it; the table must equal the uninterrupted run's
    (``reference``: its layers) and no finished epoch is trained again."""
    env, out = env_for(tmp), tmp / "train"
    r = interrupted([*TRAIN, "--out", out], env, after_s, sig, once=out / "supernet.pt")
    prog = _progress(out / "supernet.pt")
    table_before = file_digest(out / "accuracy_table.json")
    resume = hwnas([*TRAIN, "--out", out, "--json"], env)
    table = read_valid_json(out / "accuracy_table.json")
    same = None
    if reference is not None and table is not None:
        same = all(abs(table["layers"][i][c] - v) <= 1e-9
                   for i, row in enumerate(reference) for c, v in row.items())
    redone = None
    if resume.returncode == 0:
        d = json.loads(resume.stdout)
        redone = d.get("resumed_from")
    return {**r, "ok": resume.returncode == 0 and same is True,
            "progress_at_kill": prog, "finished_before": table_before is not None,
            "resume_rc": resume.returncode, "resume_err": resume.stderr[-1000:],
            "equal_to_uninterrupted": same, "resumed_from": redone}


# ---------------------------------------------------------------------- run
# the training settings the trained ``train/`` of a run trial is made with (a run reuses a
# ``train/`` only when its own settings match)
RUN_TRAIN_ARGS = ("--epochs", "1", "--later-paths", "1")


def run_trial(tmp: Path, train_dir: Path, after_s: float, sig: int) -> dict[str, Any]:
    """Interrupt ``hwnas run --quick`` (with a ``train/`` trained with ``RUN_TRAIN_ARGS``
    copied in), resume; the finished supernet, device table and engines are not redone."""
    import shutil

    env, out = env_for(tmp), tmp / "run"
    shutil.copytree(train_dir, out / "train")
    ck_digest = file_digest(out / "train" / "supernet.pt")
    argv = ["run", "--quick", *RUN_TRAIN_ARGS, "--out", out, "--json"]
    r = interrupted(argv, env, after_s, sig, once=out / "device_table_onnxruntime_fp32.json")
    table = out / "device_table_onnxruntime_fp32.json"
    table_before = read_valid_json(table)
    resume = hwnas(argv, env)
    summary = read_valid_json(out / "summary_onnxruntime_fp32.json")
    table_after = read_valid_json(table)
    kept = (table_before or {}).get("entries", {})
    changed = [k for k, v in kept.items()
               if measured((table_after or {}).get("entries", {}).get(k)) != measured(v)]
    untouched = file_digest(out / "train" / "supernet.pt") == ck_digest
    engines = len((summary or {}).get("results", []))
    return {**r, "ok": resume.returncode == 0 and untouched and engines == 3 and not changed,
            "resume_rc": resume.returncode, "resume_err": resume.stderr[-1000:],
            "supernet_unchanged": untouched, "table_entries_before": len(kept),
            "table_entries_changed": changed, "engines": engines}
