"""The published JSON Schemas (``hwnas/schemas``): one per JSON format in KINDS, valid
draft 2020-12, and every shipped table and every file the code writes conforms."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from solver_tables import make_tables

from conftest import schema_check
from hwnas.schemas import NOT_JSON, load_schema
from hwnas_profilers.fileformat import KINDS

JSON_KINDS = sorted(set(KINDS) - set(NOT_JSON))
SHIPPED = sorted((Path(__file__).resolve().parents[1] / "hwnas" / "device_tables").glob("*.json"))


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_each_format_has_a_valid_schema_of_its_version(kind):
    schema = load_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["kind"] == {"const": kind}
    assert schema["properties"]["schema"] == {"const": KINDS[kind]}


def test_the_figure_enum_is_the_protocols():
    from hwnas_profilers.protocol import FIGURES

    meta = load_schema("hwnas.device_table")["properties"]["meta"]["properties"]
    assert set(meta["protocol"]["properties"]["figure"]["enum"]) == set(FIGURES)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_device_tables_conform(path):
    schema_check(json.loads(path.read_text()))


def test_written_tables_architectures_and_frontiers_conform(tmp_path):
    from hwnas.solver import frontier

    acc, dev = make_tables("tiny-32", 3)
    front = frontier(acc, dev, max_params=1e9)
    arch = front.best(float(front.latency_ms[-1]))
    for name, obj in (("dev.json", dev), ("acc.json", acc), ("arch.json", arch)):
        obj.save(tmp_path / name)
    front.save(tmp_path / "front.json", lambda p: {"predicted_accuracy": None})
    for name in ("dev.json", "acc.json", "arch.json", "front.json"):
        schema_check(json.loads((tmp_path / name).read_text()))


def test_schemas_refuse_what_the_readers_refuse():
    doc = json.loads(SHIPPED[0].read_text())
    key = next(iter(doc["entries"]))
    for bad in ({**doc, "schema": 99}, {**doc, "kind": "hwnas.frontier"},
                {**doc, "entries": {key: {**doc["entries"][key], "spread_ms": "abc"}}},
                {**doc, "entries": {key: {"status": "ok"}}}):
        with pytest.raises(jsonschema.ValidationError):
            schema_check(bad)


def test_block_bundle_manifest_conforms(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from solver_tables import small_space

    from hwnas.bundle import export_bundle

    schema_check(export_bundle(small_space(2), tmp_path / "b", calibration_nets=1))
