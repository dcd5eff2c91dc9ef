"""The report draws from a run folder; it imports no engine, training or profiling code
(measuring lives in :mod:`hwnas.run.baselines`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("hwnas.engines", "hwnas.train", "hwnas_profilers")


def _imports(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function, made absolute."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) + 1 - node.level] \
                if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def _bad(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def test_report_module_imports_no_engine_training_or_profiling_code():
    assert _bad(_imports(ROOT / "hwnas" / "report.py", "hwnas")) == []


def test_the_import_check_sees_relative_and_late_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .engines import build\n\ndef f():\n    from ..x import y\n"
                     "    import hwnas_profilers.bundle_run\n    from .train.loop import sgd\n")
    assert _bad(_imports(probe, "hwnas")) == ["hwnas.engines", "hwnas.engines.build",
                                             "hwnas.train.loop", "hwnas.train.loop.sgd",
                                             "hwnas_profilers.bundle_run"]


def test_importing_the_report_loads_no_engine_or_training_module():
    code = ("import sys, hwnas.report; print(' '.join(m for m in sys.modules "
            "if m.startswith(('hwnas.engines', 'hwnas.train', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == ""
