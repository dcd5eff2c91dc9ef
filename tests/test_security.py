"""What hwnas trusts, from the side the corpus cannot see: the files it made itself still
load and are reused, and each check refuses exactly the change it is for (a byte of a
package, a planted cache entry, a folder hwnas did not make), not everything.

The refusals themselves (exit 2, one line, no payload run) are cases of the corpus
(``tests/corpus_code.py``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import has
from corpus_code import _aoti_package, _export_archive, _pickled


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_is_made_private(cache):
    from hwnas_profilers.fileformat import cache_root

    root = cache_root("converted")
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_package_loads_only_with_a_record_of_its_bytes(cache, tmp_path):
    """A package whose sha256 hwnas recorded passes the trust check (it then fails to
    load, being no real package); one byte changed, it is refused before any load; with
    code trusted, the same bytes pass the check."""
    from hwnas_profilers import ProfilerError
    from hwnas_profilers.trust import code_trusted, private_copy, record_built, require_trusted

    pkg = tmp_path / "model.pt2"
    pkg.write_bytes(_aoti_package(tmp_path))
    record_built(pkg)
    with private_copy(pkg) as (copy, digest):
        require_trusted(pkg, digest)  # recorded: no refusal
        assert copy.read_bytes() == pkg.read_bytes() and copy.parent != pkg.parent
    pkg.write_bytes(pkg.read_bytes()[:-1] + b"!")
    with private_copy(pkg) as (_, digest):
        with pytest.raises(ProfilerError, match="--trust-code"):
            require_trusted(pkg, digest)
        with code_trusted():
            require_trusted(pkg, digest)
    assert not (tmp_path / "CANARY").exists()


def test_trust_code_flag_reaches_the_loader(cache, tmp_path, run_cli):
    """Without the flag the package is refused by the trust check; with it, the check
    passes and the load itself is what fails (this is not a real package)."""
    pkg = tmp_path / "model.pt2"
    pkg.write_bytes(_aoti_package(tmp_path))
    rc, _, err = run_cli("measure", pkg, "--shape", "1,3,8,8", "--quick")
    assert rc == 2 and "loads only packages it built" in err
    (tmp_path / "CANARY").unlink(missing_ok=True)
    rc, _, err = run_cli("measure", pkg, "--shape", "1,3,8,8", "--quick", "--trust-code")
    assert rc == 2 and "loads only packages it built" not in err


def test_clean_export_archive_is_measured(cache, tmp_path, run_cli, torch_one_thread):
    pt2 = tmp_path / "ep.pt2"
    pt2.write_bytes(_export_archive())
    rc, out, err = run_cli("measure", pt2, "--shape", "1,3,8,8", "--iterations", "20", "--json")
    assert rc == 0, err
    assert json.loads(out)["n"] >= 20


def test_export_archive_check_refuses_what_torch_would_unpickle(tmp_path):
    import torch

    from hwnas_profilers import ProfilerError
    from hwnas_profilers.backends.torch import check_export_archive

    good = tmp_path / "good.pt2"
    good.write_bytes(_export_archive())
    check_export_archive(good, torch)
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(_pickled(tmp_path / "CANARY"))
    with pytest.raises(ProfilerError):
        check_export_archive(bad, torch)
    assert not (tmp_path / "CANARY").exists()


def test_planted_or_truncated_cache_entry_is_made_again(cache, tmp_path):
    """A converted copy is reused only when its seal holds: one planted under the right
    name, or truncated, is replaced by a fresh conversion of the user's own model."""
    pytest.importorskip("onnxruntime")
    from hwnas_profilers.backends import fp16_model
    from hwnas_profilers.cachedir import sha256_file
    from hwnas_profilers.onnxgraph import write_identity_model, write_reference_model

    src = write_reference_model(tmp_path / "m.onnx")
    first = fp16_model(src)
    made = sha256_file(first)
    assert fp16_model(src) == first and sha256_file(first) == made  # sealed: reused
    write_identity_model(tmp_path / "other.onnx")
    first.write_bytes((tmp_path / "other.onnx").read_bytes())  # planted under its name
    assert sha256_file(fp16_model(src)) == made
    first.write_bytes(first.read_bytes()[:50])  # truncated
    assert sha256_file(fp16_model(src)) == made


def _engine_folder(d: Path) -> None:
    from hwnas_profilers.cachedir import sha256_file

    d.mkdir()
    (d / "model.onnx").write_bytes(b"engine")
    (d / "manifest.json").write_text(json.dumps({
        "kind": "hwnas.engine_manifest", "schema": 2, "architecture": {"choices": []},
        "engine": {"backend": "onnxruntime", "precision": "fp32", "file": "model.onnx",
                   "sha256": {"model.onnx": sha256_file(d / "model.onnx")}},
        "latency": {}}))


def test_force_replaces_an_engine_folder_and_leaves_nothing_beside(tmp_path):
    from hwnas.engines.build import _swap_in, replaceable

    out = tmp_path / "engine"
    _engine_folder(out)
    replaceable(out)  # an engine hwnas made: may be replaced
    stage = tmp_path / ".engine.x.partial"
    stage.mkdir()
    (stage / "new.txt").write_text("new")
    _swap_in(stage, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine"]
    assert (out / "new.txt").is_file()


def test_engine_file_is_verified_against_its_manifest(tmp_path):
    from hwnas.errors import UserError
    from hwnas.runfiles import engine_file, read_run_file

    _engine_folder(tmp_path / "e")
    m = tmp_path / "e" / "manifest.json"
    d = read_run_file(m, "hwnas.engine_manifest", "engine manifest")
    assert engine_file(m, d) == tmp_path / "e" / "model.onnx"
    (tmp_path / "e" / "model.onnx").write_bytes(b"engine, changed")
    with pytest.raises(UserError, match="does not match its manifest"):
        engine_file(m, d)


def test_ascii_terminal_gets_escapes_not_a_traceback(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="ascii", LC_ALL="C",
               HWNAS_CACHE=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-m", "hwnas", "tables", "show",
                        str(tmp_path / "таблица.json")], capture_output=True, env=env,
                       timeout=120)
    err = p.stderr.decode("ascii")
    assert p.returncode == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("hwnas: error:")
    assert "\\u0442" in err  # the path, escaped


@pytest.mark.skipif(not has("openvino"), reason="openvino is not installed")
def test_a_probed_file_is_never_echoed_by_the_runtime(tmp_path):
    """OpenVINO's frontends quote a file of unknown format while probing it (from C++, on
    file descriptor 2): a ``token.xml`` linked to a secret must not reach the terminal."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET_CANARY_7f3a=hunter2\nsecond line of the secret\n")
    (tmp_path / "token.xml").symlink_to(secret)
    for argv in (["-m", "hwnas_profilers", "measure", "token.xml", "--backend", "openvino"],
                 ["-m", "hwnas", "measure", "token.xml", "--backend", "openvino",
                  "--shape", "1,3,32,32"]):
        r = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "SECRET_CANARY" not in r.stdout + r.stderr and "hunter2" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.skipif(not has("executorch"), reason="executorch is not installed")
def test_executorch_lowered_cache_entry_is_sealed(cache, tmp_path):
    """The ExecuTorch profiler's lowered copies of ONNX graphs (identity, reference) are
    reused only when sealed by its converter from that source; a planted one is redone."""
    from hwnas_profilers import Settings, get_profiler
    from hwnas_profilers.cachedir import sha256_file
    from hwnas_profilers.onnxgraph import write_identity_model

    src = write_identity_model(tmp_path / "id.onnx")
    prof = get_profiler("executorch", Settings(threads=1))
    try:
        first = prof._from_onnx(src, (1, 1, 1, 1))
        made = sha256_file(first)
        first.write_bytes(b"planted program")
        assert sha256_file(prof._from_onnx(src, (1, 1, 1, 1))) == made
    finally:
        prof.close()
