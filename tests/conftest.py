import importlib.util
import multiprocessing
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LUTS = SHARED / "data" / "third_party_luts"

# two pytest-xdist workers share this 2-core class of machine: one OpenMP thread each;
# passive waiting, as hwnas's commands ask for it (hwnas.cli._torch), so a thread waiting
# on a core the other worker holds sleeps instead of spinning (set before torch loads)
os.environ.setdefault("OMP_NUM_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# litert-torch loads JAX, whose threads make a later fork() of the same worker unsafe (JAX
# warns it may deadlock); worker processes that libraries start with multiprocessing are
# forked from a clean server process instead
multiprocessing.set_start_method("forkserver", force=True)


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def schema_check(doc: dict) -> None:
    """``doc`` conforms to the published JSON Schema its ``kind`` names (jsonschema is in
    the test extra)."""
    import jsonschema

    from hwnas.schemas import load_schema

    jsonschema.Draft202012Validator(load_schema(doc["kind"])).validate(doc)


@pytest.fixture
def run_cli(capsys):
    """Run the hwnas CLI in-process; returns (rc, stdout, stderr)."""
    from hwnas.cli import main

    def _run(*argv: str):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse errors
            rc = exc.code
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


def pytest_collection_modifyitems(config, items):
    """The heavy tests first (stable order otherwise): started last, one of them would run
    alone on one worker for minutes after the other worker finished the rest."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that set torch's thread count leaves the next test the count it found: no
    test's speed depends on which ran before it."""
    from hwnas.profiling import torch_threads_kept

    with torch_threads_kept():
        yield


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a module's tiny models, restored afterwards: tiny models gain
    nothing from a second thread, and a busy shared core makes OpenMP's spin-wait slow."""
    import torch

    from hwnas.profiling import torch_threads_kept

    with torch_threads_kept():
        torch.set_num_threads(1)
        yield
