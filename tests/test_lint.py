"""The linter and the type checker the project configures (pyproject.toml: ``[tool.ruff]``,
``[tool.mypy]``) pass on the tree, so a ``noqa`` marker or a type hint means something."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import has

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not has("ruff"), reason="ruff is not installed (the test extra has it)")
def test_ruff_finds_nothing():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                        "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not has("mypy"), reason="mypy is not installed (the test extra has it)")
def test_mypy_passes_on_the_typed_core(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
