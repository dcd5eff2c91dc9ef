"""CLI of hwnas.train: a tiny end-to-end run and the exit-2 cases."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

TINY = "c0.25,r8,s0.15,e1"


@pytest.fixture(autouse=True, scope="module")
def _one_thread(torch_one_thread):
    yield


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    from hwnas.cli import main

    out = tmp_path_factory.mktemp("cli")
    rc = main(["train", "--space", "tiny-32", "--data", "digits", "--out", str(out),
               "--proxy", TINY, "--epochs", "1", "--finetune-steps", "1", "--later-paths", "1",
               "--batch-size", "32", "--json"])
    return rc, out


def test_train_cli_writes_table(cli_run, run_cli):
    rc, out = cli_run
    assert rc == 0
    assert (out / "accuracy_table.json").is_file() and (out / "supernet.pt").is_file()
    rc, stdout, _ = run_cli("proxy-rank", out / "accuracy_table.json", out / "accuracy_table.json",
                            "--json")
    assert rc == 0 and json.loads(stdout)["pooled"]["kendall_tau"] == pytest.approx(1.0)


def test_validate_table_cli(cli_run, run_cli):
    pytest.importorskip("scipy")
    _, out = cli_run
    rc, stdout, err = run_cli("validate-table", "--checkpoint", out / "supernet.pt", "--table",
                              out / "accuracy_table.json", "--samples", "3", "--json")
    assert rc == 0, err
    assert json.loads(stdout)["samples"] == 3


def _one_line(rc, err):
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_validate_table_of_another_run_is_refused(cli_run, run_cli, tmp_path):
    """The issue's mixed folder: a table from one training run beside the checkpoint of
    another (other settings) is refused by validate-table, not silently validated."""
    _, out = cli_run
    d = json.loads((out / "accuracy_table.json").read_text())
    assert d["provenance"]["config"]["seed"] == 0   # tables record their run's settings
    d["provenance"]["config"]["seed"] = 7
    (tmp_path / "t.json").write_text(json.dumps(d))
    rc, _, err = run_cli("validate-table", "--checkpoint", out / "supernet.pt", "--table",
                         tmp_path / "t.json")
    _one_line(rc, err)
    assert "different training runs" in err


def test_validate_wrong_space_checkpoint(cli_run, run_cli, tmp_path):
    _, out = cli_run
    from hwnas.spaces import load_space
    from hwnas.tables import AccuracyTable

    sp = load_space("proxyless-mobile")
    AccuracyTable.from_rows(sp, [{c: 0.5 for c in l.choices} for l in sp.layers]).save(
        tmp_path / "t.json")
    rc, _, err = run_cli("validate-table", "--checkpoint", out / "supernet.pt", "--table",
                         tmp_path / "t.json")
    _one_line(rc, err)
    assert "is for space" in err


def test_train_into_other_space_dir(cli_run, run_cli):
    _, out = cli_run
    before = (out / "supernet.pt").read_bytes()
    rc, _, err = run_cli("train", "--space", "proxyless-mobile", "--out", out, "--proxy", TINY)
    _one_line(rc, err)
    assert (out / "supernet.pt").read_bytes() == before


@pytest.mark.parametrize("case", ["empty_dir", "one_class", "bad_npz", "bad_proxy", "no_data",
                                  "corrupt_table", "corrupt_ckpt", "bad_epochs"])
def test_exit_2(run_cli, tmp_path, case):
    argv = ["train", "--space", "tiny-32", "--out", tmp_path / "o", "--data"]
    if case == "empty_dir":
        (tmp_path / "d").mkdir()
        argv.append(tmp_path / "d")
    elif case == "one_class":
        (tmp_path / "d" / "a").mkdir(parents=True)
        np.save(tmp_path / "d" / "a" / "x.npy", np.zeros((4, 4)))
        argv.append(tmp_path / "d")
    elif case == "bad_npz":
        np.savez(tmp_path / "d.npz", x=np.zeros((5, 3)), y=np.arange(5))
        argv.append(tmp_path / "d.npz")
    elif case == "bad_proxy":
        argv += ["digits", "--proxy", "channels=3"]
    elif case == "no_data":
        argv.append(tmp_path / "missing.npz")
    elif case == "bad_epochs":
        argv += ["digits", "--epochs", "0"]
    elif case == "corrupt_table":
        (tmp_path / "t.json").write_text("{not json")
        argv = ["validate-table", "--checkpoint", tmp_path / "c.pt", "--table", tmp_path / "t.json"]
    elif case == "corrupt_ckpt":
        from hwnas.spaces import load_space
        from hwnas.tables import AccuracyTable

        sp = load_space("tiny-32")
        AccuracyTable.from_rows(sp, [{c: 0.5 for c in l.choices} for l in sp.layers]).save(
            tmp_path / "t.json")
        (tmp_path / "c.pt").write_bytes(b"\x80\x04garbage")
        argv = ["validate-table", "--checkpoint", tmp_path / "c.pt", "--table", tmp_path / "t.json"]
    rc, _, err = run_cli(*argv)
    _one_line(rc, err)
    assert not (tmp_path / "o" / "supernet.pt").exists()
