"""kill -9 and Ctrl-C at moments of real ``profile`` and ``train`` runs (``run``
under ``-m slow``), then the same command again: it resumes, re-measures or re-trains
nothing finished, and every file on disk is complete JSON at every kill.

The moments are fractions of an uninterrupted run's duration measured in the same test,
drawn from a fixed seed; ``benchmarks/interrupts.py`` tries many more.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

import interrupts as it

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def profile_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("profile-ref")
    _, measuring, _ = it.reference([*it.PROFILE, "--out", tmp / "t.json", "--json"],
                                   it.env_for(tmp), tmp / "t.json")
    return measuring  # from the table's first write to the end


@pytest.mark.parametrize("k,sig", [(0, signal.SIGKILL), (1, signal.SIGINT),
                                   pytest.param(2, signal.SIGKILL, marks=pytest.mark.slow)])
def test_profile_interrupted_resumes(profile_reference, tmp_path, k, sig):
    frac = random.Random(14 + k).uniform(0.1, 0.8)
    r = it.profile_trial(tmp_path, frac * profile_reference, sig)
    assert r["resume_rc"] == 0, r["resume_err"]
    assert r["complete"] == "complete", r
    assert not r["changed_after_resume"], r   # nothing measured was measured again
    if r["hit"] and sig == signal.SIGINT:
        _ctrl_c_exit(r)


def _ctrl_c_exit(r) -> None:
    # "hwnas: interrupted", exit 130; or -SIGINT when the signal lands while the interpreter
    # is starting or tearing down, where no handler runs; or 0 when it landed as the
    # command was finishing and its output was already complete (never 0 for lost work)
    assert "Traceback" not in r["stderr"], r["stderr"]
    assert r["rc"] in (130, -signal.SIGINT) or (r["rc"] == 0 and r["finished_before"]), r


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory):
    import json

    tmp = tmp_path_factory.mktemp("train-ref")
    _, training, out = it.reference([*it.TRAIN, "--out", tmp / "train", "--json"],
                                    it.env_for(tmp), tmp / "train" / "supernet.pt")
    return training, json.loads(out)["layers"]  # from the first checkpoint to the end


@pytest.mark.heavy
@pytest.mark.parametrize("k,sig", [(0, signal.SIGKILL), (1, signal.SIGINT)])
def test_train_interrupted_resumes_to_the_same_table(train_reference, tmp_path, k, sig):
    seconds, layers = train_reference
    frac = random.Random(140 + k).uniform(0.1, 0.8)
    r = it.train_trial(tmp_path, frac * seconds, sig, layers)
    assert r["resume_rc"] == 0, r["resume_err"]
    # resumed, not restarted: the same table as the run that was never interrupted
    assert r["equal_to_uninterrupted"] is True, r
    if r["progress_at_kill"] is not None:
        assert r["resumed_from"]["meta_epoch"] >= r["progress_at_kill"]["meta_epoch"], r
    if r["hit"] and sig == signal.SIGINT:
        _ctrl_c_exit(r)


@pytest.mark.slow
def test_run_interrupted_resumes(tmp_path):
    first = it.hwnas(["run", "--quick", *it.RUN_TRAIN_ARGS, "--out",
                      tmp_path / "a", "--json"], it.env_for(tmp_path))
    assert first.returncode == 0, first.stderr[-1000:]
    for k, sig in enumerate((signal.SIGKILL, signal.SIGINT)):
        after = random.Random(1400 + k).uniform(5, 25)
        r = it.run_trial(tmp_path / f"b{k}", tmp_path / "a" / "train", after, sig)
        assert r["resume_rc"] == 0 and r["supernet_unchanged"] and r["engines"] == 3, r
        assert not r["table_entries_changed"], r


def test_two_profiles_resume_one_table_with_a_cold_cache(tmp_path):
    """The issue saw one of two ``profile --resume`` runs on one table crash in 5 of 8
    trials (a fixed temporary name while exporting the bundle): both must now finish."""
    import subprocess
    import sys

    env, out = it.env_for(tmp_path), tmp_path / "t.json"
    argv = [sys.executable, "-m", "hwnas", *it.PROFILE, "--out", str(out), "--resume", "--json"]
    procs = [subprocess.Popen(argv, cwd=it.ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-1500:]
    table = it.read_valid_json(out)
    assert table["meta"]["status"] == "complete"


def test_second_train_into_a_busy_folder_is_refused(tmp_path, run_cli):
    """Two ``hwnas train`` into one ``--out``: the second is refused at once (one line,
    exit 2) instead of the folder ending with one run's table and the other's checkpoint."""
    import subprocess
    import sys

    out = tmp_path / "train"
    first = subprocess.Popen([sys.executable, "-m", "hwnas", *it.TRAIN, "--out", str(out)],
                             cwd=it.ROOT, env=it.env_for(tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not (out / "supernet.pt").exists() and time.monotonic() - t0 < 300:
            assert first.poll() is None, first.stderr.read()[-1000:]
            time.sleep(0.1)
        rc, _, err = run_cli(*it.TRAIN, "--out", out, "--seed", "7")
        assert rc == 2 and "in use by another hwnas process" in err, err
        assert len(err.strip().splitlines()) == 1
    finally:
        first.terminate()
        first.wait(timeout=60)
