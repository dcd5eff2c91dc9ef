"""DeviceTable codec, prediction model, foreign imports and the tables/predict commands."""

import json
import math

import pytest

from conftest import LUTS
from hwnas.arch import Architecture, sample_architecture
from hwnas.errors import TableError
from hwnas.spaces import load_space
from hwnas.tables.device import Calibration, DeviceTable, LatencyStat, load_device_table
from hwnas.tables.foreign import import_foreign

PXL = LUTS / "proxylessnas_pixel1_mobile.yaml"
OFA = LUTS / "ofa_note10_224.yaml"


def synthetic(space, overhead=0.1, scale=1.0, offset=0.0):
    entries = {b.key(): LatencyStat(0.1 + b.macs() / 1e7, 0.01, 30) for b in space.unique_blocks()}
    return DeviceTable({"backend": "test", "precision": "fp32"}, entries, space.name, space.id,
                       overhead, Calibration(scale, offset, 3))


def test_round_trip(tmp_path):
    sp = load_space("tiny-32")
    t = synthetic(sp, 0.05, 1.1, 0.2)
    t.save(tmp_path / "t.json")
    t2 = load_device_table(tmp_path / "t.json")
    assert t2.to_dict() == t.to_dict()


def test_prediction_equals_layer_cost_sum():
    sp = load_space("proxyless-mobile")
    t = synthetic(sp, 0.05, 1.3, 0.4)
    const, costs = t.layer_costs(sp)
    for seed in range(5):
        a = sample_architecture(sp, seed)
        idx = [sp.layers[i].choices.index(c) for i, c in enumerate(a.choices)]
        direct = t.predict(sp, a).latency_ms
        assert math.isclose(direct, const + sum(c[i] for c, i in zip(costs, idx)), rel_tol=1e-12)
        by_hand = 1.3 * (0.05 + sum(max(t.entries[b.key()].median_ms - 0.05, 0)
                                    for b in a.blocks(sp))) + 0.4
        assert math.isclose(direct, by_hand, rel_tol=1e-12)


def test_failed_block_is_never_zero():
    sp = load_space("tiny-32")
    t = synthetic(sp)
    key = sp.layers[0].candidates[0].key()
    t = t.with_entries({key: LatencyStat(None, status="failed", reason="unsupported op")})
    _, costs = t.layer_costs(sp)
    assert costs[0][0] == math.inf
    a = Architecture.of(sp, [sp.layers[0].choices[0]] + list(sp.sample(0)[1:]))
    with pytest.raises(TableError, match="unsupported op"):
        t.predict(sp, a)


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.update(schema=2), "schema version 2"),
    (lambda d: d.update(kind="other"), "not an hwnas device table"),
    (lambda d: d["entries"].update({"warp_i1x1x1_o1": {"median_ms": 1}}), "unknown block key"),
    (lambda d: next(iter(d["entries"].values())).update(median_ms=-1), "median_ms"),
    (lambda d: d["calibration"].update(scale=0), "scale"),
])
def test_bad_tables(tmp_path, mutate, msg):
    d = synthetic(load_space("tiny-32")).to_dict()
    mutate(d)
    (tmp_path / "t.json").write_text(json.dumps(d))
    with pytest.raises(TableError, match=msg):
        load_device_table(tmp_path / "t.json")


def test_truncated_and_nan(tmp_path):
    text = json.dumps(synthetic(load_space("tiny-32")).to_dict())
    (tmp_path / "t.json").write_text(text[: len(text) // 2])
    with pytest.raises(TableError, match="not valid JSON"):
        load_device_table(tmp_path / "t.json")
    (tmp_path / "t.json").write_text(text.replace('"median_ms": 0.1', '"median_ms": NaN', 1))
    with pytest.raises(TableError):
        load_device_table(tmp_path / "t.json")


def test_missing_block_names_key_and_command():
    sp = load_space("tiny-32")
    t = synthetic(sp)
    key = sp.layers[2].candidates[3].key()
    entries = dict(t.entries)
    del entries[key]
    t = DeviceTable(t.meta, entries, t.space, t.space_id)
    with pytest.raises(TableError, match=f"{key}.*hwnas profile --space tiny-32"):
        t.layer_costs(sp)


def test_import_proxylessnas_serves_proxyless_mobile():
    t = import_foreign(PXL, "proxylessnas")
    sp = load_space("proxyless-mobile")
    assert t.missing(sp) == [] and t.space_id == sp.id
    skip = sp.layers[1].block("skip").key()
    assert t.entries[skip].median_ms == 0.0
    # The first searchable layer's k3e3 block is the file's entry of that shape.
    b = sp.layers[0].block("k3e3")
    assert math.isclose(t.entries[b.key()].median_ms, 6.240567073170731)
    a = Architecture.of(sp, ["k3e3"] + ["skip" if "skip" in l.choices else "k3e3"
                                       for l in sp.layers[1:]])
    # additive, no overhead: the sum of the file's means for the blocks used
    want = sum(t.entries[k.key()].median_ms for k in a.blocks(sp))
    assert math.isclose(t.predict(sp, a).latency_ms, want)
    head = sp.head.key()
    assert math.isclose(t.entries[head].median_ms, 3.088623217922607 + 0.3096415478615071)


def test_import_ofa_blocks():
    t = import_foreign(OFA, "ofa")
    assert len(t.entries) == 91 + 2  # every expanded_conv + stem + merged head
    k = "mbconv_i14x14x136_o192_k7_e6_s2_se1_hswish_r0"
    assert math.isclose(t.entries[k].median_ms, next(
        v["mean"] for kk, v in __import__("yaml").safe_load(OFA.read_text()).items()
        if kk.startswith("expanded_conv-input:14x14x136-output:7x7x192-expand:816-kernel:7")))


def test_import_bad_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("Conv-input:224x224x3-output:112x112x32: [1, 2\n")
    with pytest.raises(TableError, match="not valid YAML"):
        import_foreign(bad, "proxylessnas")
    bad.write_text("Warp-input:1x1x1: {mean: 1}\n")
    with pytest.raises(TableError, match="unknown layer type"):
        import_foreign(bad, "proxylessnas")
    with pytest.raises(TableError, match="does not cover space proxyless-mobile"):
        import_foreign(OFA, "ofa", "proxyless-mobile")


def test_cli_tables(run_cli, tmp_path):
    out = tmp_path / "pxl.json"
    rc, o, e = run_cli("tables", "import", PXL, "--format", "proxylessnas", "--out", out, "--json")
    assert rc == 0, e
    assert json.loads(o)["entries"] == len(load_device_table(out).entries)
    arch = ",".join(["k5e6"] * 21)
    rc, o, e = run_cli("predict", f"proxyless-mobile:{arch}", "--table", out, "--json")
    assert rc == 0, e
    d = json.loads(o)
    # 24 blocks, then the per-call overhead and the calibration offset: rows sum to the figure
    assert d["latency_ms"] > 0 and len(d["breakdown"]) == 26
    assert sum(r["ms"] for r in d["breakdown"]) == pytest.approx(d["latency_ms"], rel=1e-9)
    rc, o, _ = run_cli("tables", "diff", out, out, "--json")
    assert rc == 0 and json.loads(o)["within_5pct"] == 1.0
    rc, o, _ = run_cli("tables", "show", out, "--json")
    assert rc == 0 and json.loads(o)["kind"] == "hwnas.device_table"
    rc, o, _ = run_cli("tables", "list", "--json")
    assert rc == 0 and isinstance(json.loads(o), list)


@pytest.mark.parametrize("content", ["", "{", '{"kind": "hwnas.device_table", "schema": 7}'])
def test_cli_bad_tables_exit_2(run_cli, tmp_path, content):
    p = tmp_path / "t.json"
    p.write_text(content)
    rc, _, err = run_cli("predict", "tiny-32:k3e3,skip,k5e6,k7e3,k3e6,skip", "--table", p)
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_cli_predict_foreign_space_exit_2(run_cli):
    rc, _, err = run_cli("predict", "tiny-32:k3e3,skip,k5e6,k7e3,k3e6,skip", "--table",
                         "proxylessnas_pixel1_tflite_fp32")
    assert rc == 2 and "stem_i32x32x3_o16_k3_s1_relu6" in err
