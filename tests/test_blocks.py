import pytest

from hwnas.blocks import Block
from hwnas.errors import UserError
from hwnas.spaces import builtin_spaces, load_space


@pytest.mark.parametrize("name", builtin_spaces())
def test_every_block_key_round_trips(name):
    for b in load_space(name).unique_blocks():
        assert Block.from_key(b.key()).key() == b.key()
        assert Block.from_key(b.key()) == b


@pytest.mark.parametrize("key", [
    "stem_i224x224x3_o32_k3_s2_relu6",
    "mbconv_i112x112x16_o24_k5_e6_s2_se1_hswish_r0",
    "skip_i56x56x24_o24",
    "head_i7x7x320_o1280_n1000_relu6",
])
def test_known_keys(key):
    assert Block.from_key(key).key() == key


@pytest.mark.parametrize("key", [
    "conv_i1x1x1_o1", "mbconv_i8x8x8_o8_k3_e3_s1_se0_relu6", "mbconv_i8x8x8_o8_k3_e3_s1_se0_relu6_r1_r1",
    "skip_i8x8x8_o16", "mbconv_i8x8x8_o8_k4_e3_s1_se0_relu6_r0", "", "mbconv_i8x8_o8",
    "mbconv_i8x8x8_o16_k3_e3_s1_se0_relu6_r1",  # residual with channel change
])
def test_bad_keys_refused(key):
    with pytest.raises(UserError):
        Block.from_key(key)


def test_choice_notation_round_trip():
    b = Block.from_choice("k5e3se", 16, 16, 24, 24, 1)
    assert b.choice() == "k5e3se" and b.residual and b.se
    assert Block.from_choice("skip", 16, 16, 24, 24, 1).choice() == "skip"
    with pytest.raises(UserError):
        Block.from_choice("skip", 16, 16, 24, 32, 1)
    with pytest.raises(UserError):
        Block.from_choice("k3x6", 16, 16, 24, 24, 1)


def test_costs_match_torch_parameter_count():
    torch = pytest.importorskip("torch")
    from hwnas.nn import build_block

    for name in builtin_spaces():
        for b in load_space(name).unique_blocks():
            m = build_block(b)
            assert sum(p.numel() for p in m.parameters()) == b.params(), b.key()
    del torch
