"""The corpus of hostile inputs (``tests/corpus.py``, ``tests/corpus_code.py``), every case
in-process.

Each case must end with exit status 2 and exactly one error line (warnings may precede
it), no traceback, no line longer than 600 characters, every file that existed before
byte-identical afterwards, and no temporary file left behind. The categories of files that
run code, links and bounds are held to more: no payload ran (no ``CANARY`` file anywhere)
and nothing was created, removed or changed outside the command's ``--out``.
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
                        ("checkpoint", 40), ("output-path", 18), ("arguments", 10),
                        ("code-file", 25), ("cache", 10), ("engine-manifest", 14),
                        ("run-file", 14), ("image-folder", 5), ("environment", 7),
                        ("numeric-bounds", 19), ("links", 13)):
        assert n[cat] >= lowest, (cat, n[cat])


# the categories whose payloads would run code or reach out of a folder
STRICT = ("code-file", "cache", "engine-manifest", "run-file", "image-folder", "environment",
          "numeric-bounds", "links")


def _entries(d: Path) -> set[str]:
    """Every name under ``d``, links included and not followed."""
    out, stack = set(), [d]
    while stack:
        for p in stack.pop().iterdir():
            out.add(str(p.relative_to(d)))
            if p.is_dir() and not p.is_symlink():
                stack.append(p)
    return out


def _outputs(argv: list[str], d: Path) -> list[str]:
    """The case's output paths (after ``--out``), relative to ``d``."""
    return [str(Path(a).relative_to(d)) for flag, a in zip(argv, argv[1:])
            if flag == "--out" and Path(a).is_relative_to(d)]


def _run(case, argv: list[str], run_cli, capsys) -> tuple[int, str, str]:
    if case.tool == "hwnas":
        return run_cli(*argv)
    from hwnas_profilers.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_is_one_line_exit_2(case, tmp_path, run_cli, capsys, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "case"
    argv = case.materialise(d)
    for k, v in case.environment(d).items():
        monkeypatch.setenv(k, v)
    before, names = _snapshot(d), _entries(d)
    rc, out, err = _run(case, argv, run_cli, capsys)
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
    assert not [p for p in tmp_path.rglob("CANARY")], "a payload ran"
    if case.category in STRICT:
        outs = _outputs(argv, d)
        moved = (_entries(d) ^ names) - {n for n in _entries(d) ^ names
                                          if any(n == o or n.startswith(o + "/") for o in outs)}
        assert not moved, f"created or removed outside the output: {sorted(moved)[:10]}"
