"""A full disk and other OS faults are user errors (one line, exit 2), and a
write that fails leaves the previous file intact and no temporary file behind.

Two ways: a real full filesystem (a small tmpfs, where this process may mount one: root
on Linux, as in CI) and ENOSPC injected at ``fsync`` (everywhere), which is where a real
filesystem with delayed allocation reports it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LUT = ROOT.parent / "shared" / "data" / "third_party_luts" / "proxylessnas_pixel1_mobile.yaml"


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _no_tmp(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.tmp")]


WRITERS = [
    ("tables-import", lambda out: ["tables", "import", LUT, "--format", "proxylessnas", "--out",
                                   out, "--force"]),
    ("space-export", lambda out: ["space", "export", "tiny-32", "--out", out, "--force"]),
    ("arch-sample", lambda out: ["arch", "sample", "--space", "tiny-32", "--out", out, "--force"]),
]


@pytest.mark.parametrize("name,argv", WRITERS, ids=[w[0] for w in WRITERS])
def test_enospc_at_fsync_keeps_the_old_file(name, argv, tmp_path, run_cli, monkeypatch):
    out = tmp_path / "out.json"
    out.write_text('{"previous": true}\n')
    monkeypatch.setattr("hwnas_profilers.fileformat.os.fsync", _enospc)
    rc, _, err = run_cli(*argv(out))
    assert rc == 2 and "No space left on device" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert json.loads(out.read_text()) == {"previous": True}
    assert not _no_tmp(tmp_path)


def test_enospc_during_profile_keeps_what_was_measured(tmp_path, run_cli, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "t.json"
    argv = ["profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
            "--calibration-nets", "2", "--out", table]
    rc, _, err = run_cli(*argv)
    assert rc == 0, err
    d = json.loads(table.read_text())
    keys = sorted(d["entries"])[:3]           # pretend the run stopped before these three
    for k in keys:
        d["entries"].pop(k)
    d["meta"]["status"] = "partial"
    table.write_text(json.dumps(d))
    before = table.read_bytes()
    monkeypatch.setattr("hwnas_profilers.fileformat.os.fsync", _enospc)
    rc, _, err = run_cli(*argv, "--resume")
    assert rc == 2 and "No space left on device" in err and "Traceback" not in err, err
    assert table.read_bytes() == before and not _no_tmp(tmp_path)
    monkeypatch.undo()
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    rc, _, err = run_cli(*argv, "--resume")   # space again: the resume completes the table
    assert rc == 0, err
    assert set(keys) <= set(json.loads(table.read_text())["entries"])


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'}); the "
                    "injected ENOSPC tests above still run")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_disk(small_fs, run_cli):
    out = small_fs / "table.json"
    out.write_text('{"previous": true}\n')
    # fill the filesystem to within a few KB: the imported table (about 100 KB) cannot fit
    fd = os.open(small_fs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    rc, _, err = run_cli("tables", "import", LUT, "--format", "proxylessnas", "--out", out,
                         "--force")
    assert rc == 2 and "No space left on device" in err and "Traceback" not in err, err
    assert json.loads(out.read_text()) == {"previous": True}
    assert not _no_tmp(small_fs)
    (small_fs / "filler").unlink()            # space again: the same command succeeds
    rc, _, err = run_cli("tables", "import", LUT, "--format", "proxylessnas", "--out", out,
                         "--force")
    assert rc == 0, err
    assert json.loads(out.read_text())["kind"] == "hwnas.device_table"
