import json

import pytest
import yaml

from hwnas.errors import SpaceError
from hwnas.spaces import builtin_spaces, load_space, save_space, space_from_dict


@pytest.mark.parametrize("name", builtin_spaces())
def test_shapes_chain_through_every_layer(name):
    sp = load_space(name)
    shape = sp.stem.out_shape
    for b in sp.fixed:
        assert b.in_shape == shape
        shape = b.out_shape
    for i, layer in enumerate(sp.layers):
        for b in layer.candidates:
            assert b.in_shape == shape, (i, b.key())
            assert b.out_shape == layer.out_shape
        shape = layer.out_shape
    assert sp.head.in_shape == shape


def test_builtin_structure():
    pm = load_space("proxyless-mobile")
    assert len(pm.layers) == 21
    assert pm.layers[0].in_shape == (112, 112, 16)
    assert pm.head.in_shape == (7, 7, 320) and pm.head.cout == 1280
    firsts = {0, 4, 8, 12, 16, 20}
    for i, layer in enumerate(pm.layers):
        assert ("skip" in layer.choices) == (i not in firsts)
        assert len(layer.choices) == (6 if i in firsts else 7)
    po = load_space("ponas-224")
    assert len(po.layers) == 19
    strided = [i + 1 for i, l in enumerate(po.layers) if l.candidates[0].stride == 2]
    assert strided == [1, 3, 7, 15]
    assert all(len(l.choices) == 12 for l in po.layers)
    assert po.head.in_shape == (7, 7, 320)
    assert load_space("tiny-32").input == (32, 32, 3)


@pytest.mark.parametrize("name", builtin_spaces())
def test_space_file_round_trip(tmp_path, name):
    sp = load_space(name)
    p = save_space(sp, tmp_path / "s.json")
    assert load_space(p).id == sp.id
    y = tmp_path / "s.yaml"
    y.write_text(yaml.safe_dump(sp.to_dict()))
    assert load_space(y).id == sp.id
    assert load_space(y) == sp


def test_id_is_content_not_name():
    d = load_space("tiny-32").to_dict()
    d["name"] = "renamed"
    assert space_from_dict(d).id == load_space("tiny-32").id
    d["layers"][0]["choices"] = ["k3e3"]
    assert space_from_dict(d).id != load_space("tiny-32").id


def test_invalid_space_names_the_layer():
    d = load_space("tiny-32").to_dict()
    d["layers"][2]["choices"] = ["k3e3", "skip"]  # layer 2 changes channels: skip impossible
    with pytest.raises(SpaceError, match="layer 2"):
        space_from_dict(d)
    d = load_space("tiny-32").to_dict()
    d["layers"][3] = {"blocks": ["mbconv_i16x16x24_o24_k3_e3_s1_se0_relu6_r1"]}  # wrong input
    with pytest.raises(SpaceError, match="layer 3.*previous layer outputs"):
        space_from_dict(d)
    d = load_space("tiny-32").to_dict()
    d["layers"][1]["choices"] = []
    with pytest.raises(SpaceError, match="layer 1: no candidates"):
        space_from_dict(d)
    d = load_space("tiny-32").to_dict()
    d["layerz"] = []
    with pytest.raises(SpaceError, match="unknown field"):
        space_from_dict(d)


def test_explicit_block_keys_accepted():
    sp = load_space("tiny-32")
    d = sp.to_dict()
    d["layers"][1] = {"blocks": [b.key() for b in sp.layers[1].candidates]}
    assert space_from_dict(d).id == sp.id


def test_bad_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(SpaceError, match="not valid JSON"):
        load_space(p)
    p.write_text(json.dumps([1, 2]))
    with pytest.raises(SpaceError, match="mapping"):
        load_space(p)
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "missing.yaml")
    with pytest.raises(SpaceError, match="unknown space"):
        load_space("no-such-space")


def test_shrink():
    sp = load_space("tiny-32")
    keep = [layer.choices[:2] for layer in sp.layers]
    small = sp.shrink(keep)
    assert small.size() == 2 ** 6 and small.id != sp.id
    with pytest.raises(SpaceError):
        sp.shrink([[]] + keep[1:])
