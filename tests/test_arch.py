import json

import pytest

from hwnas.arch import Architecture, load_architecture, sample_architecture
from hwnas.errors import ArchitectureError
from hwnas.spaces import builtin_spaces, load_space


@pytest.mark.parametrize("name", builtin_spaces())
def test_json_round_trip(tmp_path, name):
    sp = load_space(name)
    a = sample_architecture(sp, seed=7).with_figures(latency_ms=1.5, score=2.0)
    p = a.save(tmp_path / "a.json")
    sp2, b = load_architecture(p)
    assert b == a and sp2.id == sp.id
    assert b.latency_ms == 1.5


def test_macs_are_written_as_macs_and_read_under_their_old_name():
    sp = load_space("tiny-32")
    a = sample_architecture(sp, seed=3).with_figures(macs=1234, params=56)
    d = a.to_dict()
    assert d["macs"] == 1234 and "flops" not in d
    old = {k: v for k, v in d.items() if k != "macs"} | {"flops": 1234}
    assert Architecture.from_dict(old).macs == 1234
    assert Architecture.from_dict({**old, "macs": 99}).macs == 99


def test_inline_notation():
    sp, a = load_architecture("tiny-32:k3e3,skip,k5e6,k7e3,k3e6,skip")
    assert a.choices[1] == "skip" and a.space_id == sp.id


def test_sampling_is_deterministic():
    sp = load_space("proxyless-mobile")
    assert sample_architecture(sp, 3) == sample_architecture(sp, 3)
    assert sample_architecture(sp, 3) != sample_architecture(sp, 4)


@pytest.mark.parametrize("ref,msg", [
    ("tiny-32:k3e3", "6 searchable layers"),
    ("tiny-32:k3e3,k3e3,k3e3,k3e3,k3e3,k9e9", "layer 5"),
    ("tiny-32:skip,k3e3,k3e3,k3e3,k3e3,k3e3", "skip is not allowed"),
    ("nope", "neither"),
])
def test_invalid(ref, msg):
    with pytest.raises(ArchitectureError, match=msg):
        load_architecture(ref)


def test_foreign_space_id(tmp_path):
    a = sample_architecture(load_space("tiny-32"), 0)
    p = a.save(tmp_path / "a.json")
    with pytest.raises(ArchitectureError, match="not proxyless-mobile"):
        load_architecture(p, "proxyless-mobile")
    d = a.to_dict()
    d["space_id"] = "ffffffffffff"
    p.write_text(json.dumps(d))
    with pytest.raises(ArchitectureError, match="not built in"):
        load_architecture(p)
    d["schema"] = 99
    p.write_text(json.dumps(d))
    with pytest.raises(ArchitectureError, match="schema"):
        load_architecture(p)


def test_costs_are_sums_of_blocks():
    sp = load_space("proxyless-mobile")
    a = Architecture.of(sp, ["k3e3"] * 21)
    assert a.total_macs(sp) == sum(b.macs() for b in a.blocks(sp))
