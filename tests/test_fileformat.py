"""The one file-format layer: file modes, where locks live, the frontier file."""

from __future__ import annotations

import os
import stat

import pytest
from solver_tables import make_tables

from hwnas_profilers import fileformat


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_writes_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        path = fileformat.write_json_atomic(tmp_path / "t.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_lock_files_stay_out_of_the_table_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "tables" / "device_table_x.json"
    with fileformat.locked(table):
        fileformat.write_json_atomic(table, {"a": 1})
    assert sorted(p.name for p in table.parent.iterdir()) == ["device_table_x.json"]
    assert list((tmp_path / "cache" / "locks").glob("*.lock"))


def test_frontier_file_round_trip_and_old_list_form(tmp_path):
    import json

    from hwnas.errors import TableError
    from hwnas.solver import frontier, read_frontier

    acc, dev = make_tables("tiny-32", 2)
    front = frontier(acc, dev)
    front.save(tmp_path / "f.json", lambda p: {"note": p.latency_ms})
    d = read_frontier(tmp_path / "f.json")
    assert d["kind"] == "hwnas.frontier" and len(d["points"]) == len(front)
    assert [p["choices"] for p in d["points"]] == [list(a.choices) for a in front.architectures()]
    assert d["points"][0]["note"] == d["points"][0]["latency_ms"]
    (tmp_path / "old.json").write_text(json.dumps(d["points"]))  # run folders before the header
    assert read_frontier(tmp_path / "old.json")["points"] == d["points"]
    (tmp_path / "bad.json").write_text(json.dumps({**d, "points": [{"choices": [1]}]}))
    with pytest.raises(TableError, match="point 0 needs 'choices'"):
        read_frontier(tmp_path / "bad.json")
