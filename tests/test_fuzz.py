"""Property-based tests (hypothesis) on every parser of an untrusted file.

The property is the same everywhere: any input either decodes or raises the parser's one
user-error type, with a one-line message of bounded length; never another exception.
Derandomised (a fixed example database-free search) so the suite stays deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hwnas.errors import UserError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEVICE = json.loads((ROOT / "hwnas" / "device_tables" / "tiny-32_onnxruntime_cpu_fp32.json").read_text())
FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (st.none() | st.booleans() | st.integers(-10**40, 10**40)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_like = st.recursive(scalars, lambda kids: st.lists(kids, max_size=5)
                         | st.dictionaries(st.text(max_size=12), kids, max_size=5), max_leaves=30)


def _decodes_or_refuses(call, error: type[BaseException] = UserError) -> None:
    """The property of every parser: ``call()`` returns, or raises ``error`` with a
    one-line message of bounded length; any other exception fails the test."""
    try:
        call()
    except error as exc:
        msg = str(exc)
        assert "\n" not in msg.strip() and len(msg) <= 1500, msg[:300]


def _mutate(base, path: list, value):
    """``base`` with the node at ``path`` (keys/indices, taken modulo) replaced."""
    d = json.loads(json.dumps(base))
    node = d
    for i, step in enumerate(path):
        if isinstance(node, dict) and node:
            keys = sorted(node)
            k = keys[step % len(keys)]
            if i == len(path) - 1 or not isinstance(node[k], (dict, list)):
                node[k] = value
                return d
            node = node[k]
        elif isinstance(node, list) and node:
            j = step % len(node)
            if i == len(path) - 1 or not isinstance(node[j], (dict, list)):
                node[j] = value
                return d
            node = node[j]
    return value


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_json_layer_any_text(text):
    from hwnas_profilers.fileformat import FormatError, loads

    _decodes_or_refuses(lambda: loads(text, "fuzz"), FormatError)


@FUZZ
@given(st.text(max_size=400))
def test_yaml_reader_any_text(tmp_path_factory, text):
    from hwnas.fileio import read_yaml

    p = tmp_path_factory.mktemp("y") / "f.yaml"
    p.write_text(text, encoding="utf-8")
    _decodes_or_refuses(lambda: read_yaml(p, "fuzz"))


@FUZZ
@given(st.lists(st.integers(0, 50), min_size=1, max_size=5), json_like)
def test_device_table_any_mutation(path, value):
    from hwnas.tables.device import DeviceTable

    _decodes_or_refuses(lambda: DeviceTable.from_dict(_mutate(DEVICE, path, value)))


@FUZZ
@given(json_like)
def test_space_any_spec(spec):
    from hwnas.spaces import space_from_dict

    _decodes_or_refuses(
        lambda: space_from_dict(spec if isinstance(spec, dict) else {"layers": spec}))


@FUZZ
@given(st.lists(st.integers(0, 50), min_size=1, max_size=4), json_like)
def test_space_any_mutation_of_a_builtin(path, value):
    from hwnas.spaces import BUILTIN_SPECS, space_from_dict

    _decodes_or_refuses(lambda: space_from_dict(_mutate(BUILTIN_SPECS["tiny-32"], path, value)))


@FUZZ
@given(st.text(max_size=200))
def test_block_key_any_text(key):
    from hwnas.blocks import Block

    _decodes_or_refuses(lambda: Block.from_key(key))


@FUZZ
@given(st.lists(st.integers(0, 50), min_size=1, max_size=4), json_like)
def test_accuracy_table_any_mutation(path, value):
    from hwnas.spaces import load_space
    from hwnas.tables.accuracy import AccuracyTable

    sp = load_space("tiny-32")
    base = {"schema": 1, "kind": "hwnas.accuracy_table", "space": sp.name, "space_id": sp.id,
            "layers": [{c: 0.5 for c in layer.choices} for layer in sp.layers]}
    _decodes_or_refuses(lambda: AccuracyTable.from_dict(_mutate(base, path, value)))


@FUZZ
@given(st.text(max_size=500))
def test_accuracy_csv_any_text(text):
    from hwnas.spaces import load_space
    from hwnas.tables.accuracy import AccuracyTable

    _decodes_or_refuses(
        lambda: AccuracyTable.from_csv("layer,choice,score\n" + text, load_space("tiny-32")))


@FUZZ
@given(st.lists(st.integers(0, 20), min_size=1, max_size=3), json_like)
def test_architecture_any_mutation(path, value):
    from hwnas.arch import Architecture
    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    base = {"schema": 1, "kind": "hwnas.architecture", "space": sp.name, "space_id": sp.id,
            "choices": ["k3e3"] * 6, "latency_ms": 0.3, "score": 5.0}
    _decodes_or_refuses(lambda: Architecture.from_dict(_mutate(base, path, value)).validate(sp))


@FUZZ
@given(st.dictionaries(st.text(max_size=60), json_like, max_size=6))
def test_foreign_table_any_mapping(tmp_path_factory, mapping):
    import yaml

    from hwnas.tables.foreign import import_foreign

    p = tmp_path_factory.mktemp("f") / "t.yaml"
    try:
        p.write_text(yaml.safe_dump(mapping))
    except (yaml.YAMLError, ValueError):
        return
    _decodes_or_refuses(lambda: import_foreign(p, "ofa", "tiny-32"))
