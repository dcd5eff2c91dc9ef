import json
import re

import pytest

from conftest import has


def test_space_list_and_show(run_cli):
    rc, out, err = run_cli("space", "list", "--json")
    assert rc == 0 and {d["name"] for d in json.loads(out)} >= {"tiny-32", "proxyless-mobile", "ponas-224"}
    rc, out, _ = run_cli("space", "show", "proxyless-mobile", "--json")
    d = json.loads(out)
    assert rc == 0 and len(d["layers"]) == 21 and "skip" in d["layers"][1]["choices"]
    rc, out, _ = run_cli("space", "show", "tiny-32")
    assert rc == 0 and "k7e6" in out


def test_arch_sample_show(run_cli, tmp_path):
    rc, out, _ = run_cli("arch", "sample", "--space", "tiny-32", "--seed", "1", "--out",
                         tmp_path / "a.json", "--json")
    assert rc == 0 and json.loads(out)["space"] == "tiny-32"
    rc, out, _ = run_cli("arch", "show", tmp_path / "a.json", "--json")
    assert rc == 0 and json.loads(out)["macs"] > 0


@pytest.mark.parametrize("argv", [
    ["space", "show", "no-such"],
    ["arch", "show", "tiny-32:k3e3"],
    ["arch", "sample", "--space", "missing.yaml"],
    ["arch", "show", "missing.json"],
    ["space", "frobnicate"],
])
def test_bad_input_exit_2_one_line(run_cli, argv):
    rc, out, err = run_cli(*argv)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_corrupt_files_exit_2(run_cli, tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("layers: [\n")
    rc, _, err = run_cli("space", "show", bad)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    a = tmp_path / "a.json"
    a.write_text('{"kind": "hwnas.architecture", "schema": 1, "space_id": "x", "choi')
    rc, _, err = run_cli("arch", "show", a)
    assert rc == 2 and "not valid JSON" in err


@pytest.mark.skipif(not has("onnx"), reason="onnx not installed")
def test_arch_export_and_blocks_export(run_cli, tmp_path):
    import onnx

    rc, out, _ = run_cli("arch", "export", "tiny-32:k3e3,skip,k5e6,k7e3,k3e6,skip",
                         "--out", tmp_path / "n.onnx", "--json")
    assert rc == 0
    onnx.checker.check_model(onnx.load(str(tmp_path / "n.onnx")))
    rc, out, _ = run_cli("blocks", "export", "--space", "tiny-32", "--out", tmp_path / "b",
                         "--calibration-nets", "1", "--json")
    assert rc == 0
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    from hwnas.spaces import load_space

    keys = {b.key() for b in load_space("tiny-32").unique_blocks()}
    assert {e["key"] for e in man["blocks"]} == keys
    assert all((tmp_path / "b" / e["file"]).is_file() for e in man["blocks"])
    assert len(man["networks"]) == 1


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, hwnas, hwnas.cli; hwnas.cli.build_parser(); "
            "bad=[m for m in ('torch','onnxruntime','openvino','tensorrt','onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_space_export_round_trips_and_edits(run_cli, tmp_path, suffix):
    from hwnas.spaces import load_space

    out = tmp_path / f"s{suffix}"
    rc, o, e = run_cli("space", "export", "proxyless-mobile", "--out", out, "--json")
    assert rc == 0, e
    assert load_space(out).id == load_space("proxyless-mobile").id == json.loads(o)["id"]
    rc, o, e = run_cli("space", "export", "tiny-32", "--classes", "3", "--out", out)
    assert rc == 2 and "--force" in e   # an existing file is never silently replaced
    rc, o, e = run_cli("space", "export", "tiny-32", "--classes", "3", "--out", out, "--force")
    assert rc == 0 and load_space(out).classes == 3 and load_space(out).head.classes == 3
    rc, _, e = run_cli("space", "export", "tiny-32", "--out", tmp_path / "s.txt")
    assert rc == 2 and len(e.strip().splitlines()) == 1


def test_tables_show_and_diff_read_as_text(run_cli):
    rc, out, _ = run_cli("tables", "show", "tiny-32_onnxruntime_cpu_fp32")
    assert rc == 0 and "{'" not in out and "calibration.scale" in out
    assert re.search(r"calibration\.within_10pct\s*│\s*\d+\.\d%", out)
    rc, out, _ = run_cli("tables", "diff", "tiny-32_onnxruntime_cpu_fp32",
                         "tiny-32_openvino_cpu_fp32")
    assert rc == 0 and re.search(r"within 10%: \d{1,3}\.\d%;", out), out


def test_long_architectures_fold_in_80_columns(monkeypatch, capsys):
    from rich.console import Console

    from hwnas.cli import _output

    monkeypatch.setattr(_output, "console", lambda: Console(width=80))
    arch = ",".join(["k5e3", "skip", "k3e6", "k5e6", "k3e3", "skip", "k7e6"] * 3)
    _output.table("t", ["choices", "predicted", "inherited"], [[arch, "0.9", "0.8"]])
    out = capsys.readouterr().out
    assert "…" not in out
    first = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert "".join(first) == arch
