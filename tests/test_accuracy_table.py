import json

import pytest

from hwnas.errors import TableError
from hwnas.spaces import load_space
from hwnas.tables.accuracy import AccuracyTable, load_accuracy_table


def make(space_name="tiny-32"):
    sp = load_space(space_name)
    rows = [{c: 0.5 + 0.01 * j + 0.001 * i for j, c in enumerate(l.choices)}
            for i, l in enumerate(sp.layers)]
    return AccuracyTable.from_rows(sp, rows, {"data": "digits", "seed": 0})


def test_json_and_csv_round_trip(tmp_path):
    t = make()
    t.save(tmp_path / "a.json")
    t2 = load_accuracy_table(tmp_path / "a.json")
    assert t2.scores == t.scores and t2.space.id == t.space.id
    t.save(tmp_path / "a.csv")
    t3 = load_accuracy_table(tmp_path / "a.csv", "tiny-32")
    assert t3.scores == t.scores


def test_shrunk_space_travels_with_the_table(tmp_path):
    sp = load_space("tiny-32")
    small = sp.shrink([l.choices[:3] for l in sp.layers])
    t = AccuracyTable.from_rows(small, [{c: 1.0 for c in l.choices} for l in small.layers])
    t.save(tmp_path / "a.json")
    assert load_accuracy_table(tmp_path / "a.json").space.id == small.id


def test_relative_loss():
    loss = make().relative_loss()
    assert all(min(r.values()) == 0.0 for r in loss)


@pytest.mark.parametrize("csv,msg", [
    ("layer,choice\n", "header"),
    ("layer,choice,score\n0,k3e3\n", "3 fields"),
    ("layer,choice,score\n9,k3e3,0.5\n", "out of range"),
    ("layer,choice,score\n0,k3e3,x\n", "cannot read"),
    ("layer,choice,score\n0,k3e3,0.5\n0,k3e3,0.6\n", "given twice"),
    ("layer,choice,score\n0,k9e9,0.5\n", "not a candidate"),
    ("layer,choice,score\n0,k3e3,0.5\n", "no score for"),
    ("layer,choice,score\n0,k3e3,nan\n", "finite"),
])
def test_bad_csv(tmp_path, csv, msg):
    p = tmp_path / "a.csv"
    p.write_text(csv)
    with pytest.raises(TableError, match=msg):
        load_accuracy_table(p, "tiny-32")


def test_bad_json(tmp_path):
    p = tmp_path / "a.json"
    d = make().to_dict()
    d["schema"] = 3
    p.write_text(json.dumps(d))
    with pytest.raises(TableError, match="schema"):
        load_accuracy_table(p)
    d = make().to_dict()
    d["space_id"] = "000000000000"
    p.write_text(json.dumps(d))
    with pytest.raises(TableError, match="does not match"):
        load_accuracy_table(p)
    make().save(p)
    with pytest.raises(TableError, match="not proxyless-mobile"):
        load_accuracy_table(p, "proxyless-mobile")
    with pytest.raises(TableError, match="names no space"):
        load_accuracy_table(tmp_path / "x.csv")
