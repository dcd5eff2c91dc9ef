"""The run folder's file names have one owner, :class:`hwnas.run.folder.RunFolder`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "hwnas" / "run" / "folder.py"
# a run folder's file names as code spells them: a literal or an f-string part that starts
# one of them, or a whole file name (docstrings and help sentences describe, not spell)
NAMES = re.compile(r"^(device_table_|frontier_|baselines_|summary_|report_|budget_)$|"
                   r"(^|/)(device_table_|frontier_|baselines_|summary_|report_)"
                   r"(\{|[\w.-]+\.(json|csv)$)|^budget_[0-9{]|"
                   r"(^|/)(accuracy_table\.json|report\.html)$")
# their own names, not a run folder's: ponas.TABLE_NAME is what RunFolder names the
# accuracy table by; ``hwnas evolve`` writes one budget_* folder per budget in its --out
ALLOWED = {ROOT / "hwnas" / "train" / "ponas.py", ROOT / "hwnas" / "cli" / "evolve.py"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _spelled(path: Path) -> list[str]:
    """``path:line: text`` of every string in code that spells a run-folder file name."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                and NAMES.search(node.value):
            found.append(f"{path}:{node.lineno}: {node.value!r}")
    return found


def _sources() -> list[Path]:
    files = [*(ROOT / "hwnas").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    return sorted(f for f in files if f != OWNER and f not in ALLOWED)


def test_no_run_folder_file_name_is_spelled_outside_run_folder():
    found = [hit for f in _sources() for hit in _spelled(f)]
    assert found == [], "\n".join(found)


def test_the_check_finds_a_spelled_name(tmp_path):
    """The check above is not empty by construction: it finds each kind of name."""
    f = tmp_path / "probe.py"
    f.write_text('def f(out, tag, b):\n    """summary_{tag}.json: a docstring"""\n'
                 '    return [out / f"summary_{tag}.json", out / "train" / "accuracy_table.json",\n'
                 '            out / f"budget_{b:g}ms_{tag}", out / f"device_table_{tag}.json"]\n')
    assert len(_spelled(f)) == 4


def test_paths_of_a_run_folder(tmp_path):
    from hwnas.run.folder import RunFolder

    r = RunFolder.for_backend(tmp_path, "onnxruntime", "fp32")
    assert r.summary == tmp_path / "summary_onnxruntime_fp32.json"
    assert r.summary_csv.name == "summary_onnxruntime_fp32.csv"
    assert r.frontier.name == "frontier_onnxruntime_fp32.json"
    assert r.baselines.name == "baselines_onnxruntime_fp32.json"
    assert r.report_html == tmp_path / "report_onnxruntime_fp32" / "report.html"
    assert r.engine_dir(0.25).name == "budget_0.25ms_onnxruntime_fp32"
    assert r.accuracy_table == tmp_path / "train" / "accuracy_table.json"
    assert r.checkpoint == tmp_path / "train" / "supernet.pt"


def test_device_table_is_named_for_the_profiler_that_measured_it(tmp_path):
    """torch-aoti engines are measured by the torch profiler: the run writes (and the
    report must read) device_table_torch_*, not device_table_torch-aoti_*."""
    pytest.importorskip("torch")
    from hwnas.run.folder import RunFolder

    r = RunFolder.for_backend(tmp_path, "torch-aoti", "fp32")
    assert r.device_table.name == "device_table_torch_fp32.json"
    assert r.summary.name == "summary_torch-aoti_fp32.json"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".."])
def test_a_name_part_that_leaves_the_folder_is_refused(tmp_path, bad):
    from hwnas.errors import UserError
    from hwnas.run.folder import RunFolder

    with pytest.raises(UserError):
        RunFolder(tmp_path, "onnxruntime", bad, "onnxruntime")
