"""Every ```bash block of README.md, read from the README itself so that it cannot drift
from the command line.

Each block is named in ``BLOCKS`` by its section and first command, with how it is checked:

- ``setup``: the two set-up lines. Their extras exist in pyproject.toml, the second is the
  line ``.ci/run`` runs, and the last command of each (the main job, the test suite) is
  parsed and then run with ``--help`` only: installing and running them whole takes minutes.
- ``run``: every command of the block runs whole, in order, in a fresh folder (with
  ``examples/`` beside it and its own cache), and exits 0.
- ``parse``: long jobs (profiling, training, engines) or files the README assumes: every
  command is parsed and argument-checked with hwnas's own parsers, not run.
- ``gpu`` / ``cluster``: parsed like ``parse``, then skipped with the reason.

A block that is not in ``BLOCKS``, or an entry whose block is gone, fails the test, so a new
block is classified when it is written.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import has

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# "section: first command (its words joined by spaces)" -> (how it is checked, why it is
# not run whole where it is not)
BLOCKS: dict[str, tuple[str, str]] = {
    "hwnas: python3 -m venv .venv && .venv/bin/pip install -e .[host] && "
    ".venv/bin/hwnas run --out runs/default": ("setup", "installs and runs for minutes"),
    "Quick start (five minutes): hwnas space list": ("run", ""),
    "Commands: hwnas space list": ("run", ""),
    "Commands: hwnas search --accuracy examples/tiny-32_accuracy.csv --space tiny-32 "
    "--table tiny-32_onnxruntime_cpu_fp32 --budget-ms 0.2,0.3 --max-params 60000 "
    "--frontier f.json --out arch.json --json": ("run", ""),
    "Commands: hwnas tables import proxylessnas_pixel1_mobile.yaml --format proxylessnas "
    "--out pixel1.json": ("parse", "a ProxylessNAS file the README assumes; "
                                   "recalibration measures for a minute"),
    "Commands: hwnas profile --space proxyless-mobile --backend onnxruntime --threads 1 "
    "--out t.json": ("parse", "profiling and measuring take minutes"),
    "Commands: hwnas train --space tiny-32 --data digits --out runs/sn": (
        "parse", "training takes minutes"),
    "Commands: hwnas run --space tiny-32 --data digits --backend openvino --budget-ms 0.15 "
    "--out runs/mine": ("parse", "the main job and engine builds take minutes"),
    "Training on a GPU or several processes (torchrun): hwnas train --space tiny-32 "
    "--out runs/sn --train-device cuda": ("gpu", "trains on an NVIDIA GPU and for minutes"),
    "Profiling a fleet of devices (Ray): ray start --address HEAD:6379 --resources "
    '{"hwnas-device": 1} --labels hwnas-device=board-07': (
        "cluster", "needs a Ray cluster of devices"),
}


def _blocks() -> dict[str, list[list[str]]]:
    """README's bash blocks as {"section: first command": [argv, ...]}; ``&&`` splits a
    line into commands, a trailing backslash continues it, ``#`` starts a comment."""
    text = README.read_text()
    out: dict[str, list[list[str]]] = {}
    for m in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
        heads = re.findall(r"^#{1,2} (.+)$", text[:m.start()], re.M)
        lines = [shlex.split(ln, comments=True)
                 for ln in m.group(1).replace("\\\n", " ").splitlines()]
        lines = [argv for argv in lines if argv]
        key = f"{heads[-1] if heads else ''}: {' '.join(lines[0])}"
        assert key not in out, f"two README blocks start alike: {key}"
        out[key] = lines
    return out


def _commands(line: list[str]) -> list[list[str]]:
    cmds, cur = [], []
    for word in line:
        if word == "&&":
            cmds.append(cur)
            cur = []
        else:
            cur.append(word)
    return cmds + [cur]


def _hwnas_args(argv: list[str]) -> tuple[str, list[str]] | None:
    """(program, arguments) of an hwnas or hwnas-profilers command, torchrun's included."""
    prog = Path(argv[0]).name
    if prog in ("hwnas", "hwnas-profilers"):
        return prog, argv[1:]
    if prog == "torchrun":
        at = argv.index("-m")
        assert argv[at + 1] == "hwnas", argv
        return "hwnas", argv[at + 2:]
    return None


def _parse(argv: list[str]) -> None:
    """Argument-check one command with the parser its program uses; fail on what it refuses."""
    import hwnas.cli
    import hwnas_profilers.cli

    hw = _hwnas_args(argv)
    if hw is None:
        prog = Path(argv[0]).name
        if prog.startswith("python") and len(argv) > 1 and argv[1].endswith(".py"):
            assert (ROOT / argv[1]).is_file(), f"README runs a missing script: {argv[1]}"
            return
        assert prog in ("ray", "python3", "pip", "python"), f"unknown command: {argv}"
        return
    prog, args = hw
    parser = (hwnas.cli if prog == "hwnas" else hwnas_profilers.cli).build_parser()
    try:
        parser.parse_args(args)
    except SystemExit as exc:  # the parsers print one line and exit 2
        pytest.fail(f"README command does not parse ({exc.code}): {shlex.join(argv)}")


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    hw = _hwnas_args(argv)
    if hw is not None:
        module = "hwnas" if hw[0] == "hwnas" else "hwnas_profilers"
        cmd = [sys.executable, "-m", module, *hw[1]]
    else:
        assert Path(argv[0]).name.startswith("python"), argv
        cmd = [sys.executable, *argv[1:]]
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{shlex.join(argv)} exited {r.returncode}: {r.stderr[-2000:]}"
    return r


def test_every_readme_block_is_classified():
    found = set(_blocks())
    assert found - set(BLOCKS) == set(), "README blocks without a BLOCKS entry"
    assert set(BLOCKS) - found == set(), "BLOCKS entries whose README block is gone"


@pytest.mark.parametrize("key", [k for k, (mode, _) in BLOCKS.items() if mode == "parse"
                                 or mode in ("gpu", "cluster")])
def test_readme_block_parses(key):
    mode, why = BLOCKS[key]
    for line in _blocks()[key]:
        for argv in _commands(line):
            _parse(argv)
    if mode in ("gpu", "cluster"):
        pytest.skip(f"parsed; not run: {why}")


@pytest.mark.skipif(not (has("torch") and has("onnx") and has("onnxruntime")),
                    reason="the quick commands export ONNX and run ONNX Runtime")
@pytest.mark.parametrize("key", [k for k, (mode, _) in BLOCKS.items() if mode == "run"])
def test_readme_block_runs(key, tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "HWNAS_CACHE": str(tmp_path / "cache")}
    for line in _blocks()[key]:
        for argv in _commands(line):
            _parse(argv)
            r = _run(argv, tmp_path, env)
            assert r.stdout.strip(), f"{shlex.join(argv)} printed nothing"
            if argv[:2] == ["hwnas", "search"] and "0.1,0.2,0.3" in argv:
                # the quick start says so: the infeasible budget is reported, the rest answered
                assert "budget_ms 0.1: no answer" in r.stderr, r.stderr
                assert r.stdout.count("tiny-32") >= 1


def test_readme_setup_lines(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    (key,) = [k for k, (mode, _) in BLOCKS.items() if mode == "setup"]
    lines = _blocks()[key]
    assert len(lines) == 2, "two set-up lines: the main job and the test suite"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.startswith("#")]
    assert shlex.split(ci[-1]) == lines[1], ".ci/run runs the README's second line"
    env = {**os.environ, "HWNAS_CACHE": str(tmp_path / "cache")}
    for line in lines:
        venv, pip, job = _commands(line)
        assert venv == ["python3", "-m", "venv", ".venv"]
        assert pip[:2] == [".venv/bin/pip", "install"] and "-e" in pip
        extra = re.fullmatch(r"\.\[(\w+)\]", pip[-1])
        assert extra and extra.group(1) in extras, pip
        if Path(job[0]).name == "hwnas":  # the main job: its arguments, then --help only
            _parse(job)
            assert "usage: hwnas run" in _run([*job, "--help"], tmp_path, env).stdout
        else:  # the suite: pytest with the README's options, --help only
            assert job[:3] == [".venv/bin/python", "-m", "pytest"], job
            _run([*job, "--help"], ROOT, env)


def test_readme_cpu_torch_wheel_is_in_the_tested_range():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    Requirement = pytest.importorskip("packaging.requirements").Requirement

    text = README.read_text()
    pins = re.findall(r"pip install torch==([\d.]+) --index-url "
                      r"https://download\.pytorch\.org/whl/cpu", text)
    assert pins, "the README says how to install the CPU torch wheel"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for name in ("torch", "host", "test"):
        (req,) = [Requirement(r) for r in extras[name] if Requirement(r).name == "torch"]
        for pin in pins:
            assert req.specifier.contains(pin), f"extra {name}: {req} excludes {pin}"


def test_readme_library_section_is_the_example_script():
    text = README.read_text()
    section = text.split("## Library", 1)[1].split("\n## ", 1)[0]
    assert "examples/deploy.py" in section
    (snippet,) = re.findall(r"```python\n(.*?)```", section, re.S)
    script = {ln.strip() for ln in (ROOT / "examples" / "deploy.py").read_text().splitlines()}
    missing = [ln for ln in snippet.splitlines() if ln.strip() and ln.strip() not in script]
    assert not missing, f"README library lines that examples/deploy.py does not run: {missing}"
