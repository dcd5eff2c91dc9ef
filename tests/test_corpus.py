"""Issue 14: the corpus of hostile inputs (``tests/corpus.py``), every case in-process.

Each case must end with exit status 2 and exactly one error line (warnings may precede
it), no traceback, no line longer than 600 characters, every file that existed before
byte-identical afterwards, and no temporary file left behind.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from corpus import cases

CASES = cases()


def _snapshot(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not p.is_symlink():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[str(p.relative_to(d))] = h.hexdigest()
    return out


def test_corpus_size_and_categories():
    n = Counter(c.category for c in CASES)
    assert len(CASES) >= 400, n
    assert len({c.id for c in CASES}) == len(CASES)  # ids are unique
    for cat, lowest in (("device-table", 100), ("foreign-table", 50), ("space-file", 60),
                        ("accuracy-table", 40), ("architecture", 25), ("training-data", 29),
                        ("checkpoint", 40), ("output-path", 18), ("arguments", 10)):
        assert n[cat] >= lowest, (cat, n[cat])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_is_one_line_exit_2(case, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "case"
    argv = case.materialise(d)
    before = _snapshot(d)
    rc, out, err = run_cli(*argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err[-2000:]
    assert rc == 2, f"exit {rc}\nstdout: {out[-500:]}\nstderr: {err[-1000:]}"
    errors = [ln for ln in lines if ": error:" in ln]
    assert len(errors) == 1 and lines[-1] == errors[0], err[-1500:]
    assert all(len(ln) <= 600 for ln in lines), max(len(ln) for ln in lines)
    after = _snapshot(d)
    changed = [f for f, h in before.items() if after.get(f) != h]
    assert not changed, f"changed or removed: {changed}"
    leftovers = [f for f in after if f not in before and f.endswith(".tmp")]
    assert not leftovers, leftovers
