"""A device table measures the graph an engine runs: one conversion recipe on both sides.

For every block kind of a space (stem, fixed block, each candidate with and without its
residual, head), the fp16 and int8 copy a profiler measures (``hwnas_profilers.backends``:
the block's own ONNX file from the bundle exporter) is compared with the same block cut out
of an engine's converted whole network (``hwnas.engines.quantize``: the folded network
exported and converted the way ``build_engine`` does). Compared: every node's op type and
attributes, and the dtype and shape of every initializer a node reads.

Where a cut is made: from the tensor entering the block to the tensor leaving it, extended
over the Quantize/Dequantize pair on that tensor in an int8 engine (the table's block
carries the pair on its own output, since its activation is quantized for the next block
there too). The fp32 input/output casts of an fp16 block (its file keeps fp32 I/O) are not
part of the block. A ``skip`` layer has no node in an engine and is not compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


def _kind(block) -> tuple:
    """A block's kind: every field but its shapes."""
    return (block.op, block.kernel, block.expand, block.stride, block.se, block.act,
            block.residual)


def _architectures(space) -> list:
    """Two architectures that hold every candidate kind of ``space`` (choice ``(i + j) %
    n`` at layer ``i``): together they put each candidate on a residual and a plain layer."""
    from hwnas.arch import Architecture

    plain = [[c for c in layer.choices if c != "skip"] for layer in space.layers]
    return [Architecture.of(space, [cs[(i + j) % len(cs)] for i, cs in enumerate(plain)])
            for j in range(2)]


def _prefixes(space) -> list[str]:
    """ONNX node-name prefix of each block of a sub-network, in ``arch.blocks`` order."""
    return (["/stem/"] + [f"/fixed/fixed.{i}/" for i in range(len(space.fixed))]
            + [f"/layers.{i}/" for i in range(len(space.layers))] + ["/head/"])


def _boundary(model, prefix: str) -> tuple[list[str], list[str]]:
    """The tensors entering and leaving the nodes named ``prefix...`` of an fp32 graph."""
    nodes = [n for n in model.graph.node if n.name.startswith(prefix)]
    made = {o for n in nodes for o in n.output}
    inits = {i.name for i in model.graph.initializer}
    ins = [i for n in nodes for i in n.input if i and i not in made and i not in inits]
    read_outside = {i for n in model.graph.node if not n.name.startswith(prefix)
                    for i in n.input} | {o.name for o in model.graph.output}
    return list(dict.fromkeys(ins)), [o for o in made if o in read_outside]


def _past_qdq(model, tensor: str) -> str:
    """``tensor``, or the output of the Quantize -> Dequantize pair that reads it."""
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and tensor in n.input]
    if not q:
        return tensor
    dq = [n for n in model.graph.node
          if n.op_type == "DequantizeLinear" and q[0].output[0] in n.input]
    return dq[0].output[0] if dq else tensor


def _cut(model, ins: list[str], outs: list[str]):
    model = onnx.shape_inference.infer_shapes(model)
    return onnx.utils.Extractor(model).extract_model(ins, outs)


def _signature(model) -> tuple[list, list]:
    """(sorted node op types with attributes, sorted initializer dtypes and shapes)."""
    from onnx import helper

    inits = {t.name: t for t in model.graph.initializer}
    gin = {i.name for i in model.graph.input}
    gout = {o.name for o in model.graph.output}
    nodes = []
    for n in model.graph.node:
        if n.op_type == "Cast" and (n.input[0] in gin or n.output[0] in gout):
            continue  # the fp32 I/O of a table's fp16 block file
        attrs = tuple(sorted(
            (a.name, a.t.data_type, tuple(a.t.dims)) if a.type == onnx.AttributeProto.TENSOR
            else (a.name, str(helper.get_attribute_value(a))) for a in n.attribute))
        nodes.append((n.op_type, attrs))
    dtypes = sorted((inits[i].data_type, tuple(inits[i].dims))
                    for n in model.graph.node for i in n.input if i in inits)
    return sorted(nodes), dtypes


def _engine_files(space, arch, folder: Path) -> tuple[Path, Path, Path]:
    """The fp32, fp16 and int8 files ``build_engine`` writes for ``arch`` (fresh weights)."""
    from hwnas.engines import quantize as qz
    from hwnas.engines.finetune import fold_bn
    from hwnas.engines.model_file import export_fp32
    from hwnas.nn.subnet import build_subnet

    shape = (1, space.input[2], space.input[0], space.input[1])
    fp32 = export_fp32(fold_bn(build_subnet(space, arch, 0)), shape, folder / "fp32.onnx")
    calib = qz.calibration_images(None, shape, 8, 0)
    return (fp32, qz.export_fp16(fp32, folder / "fp16.onnx"),
            qz.ptq_onnx(fp32, folder / "int8.onnx", calib))


def _compare(space, tmp_path: Path) -> set:
    from hwnas.nn.export import export_block
    from hwnas_profilers.backends import fp16_model, qdq_model
    from hwnas_profilers.convert import inline_initializer_identities

    seen: set = set()
    for j, arch in enumerate(_architectures(space)):
        folder = tmp_path / f"arch{j}"
        folder.mkdir()
        fp32, fp16, int8 = _engine_files(space, arch, folder)
        plain = onnx.load(str(fp32))
        inline_initializer_identities(plain)  # aliases are weights, not block inputs
        engines = {"fp16": onnx.load(str(fp16)), "int8": onnx.load(str(int8))}
        for block, prefix in zip(arch.blocks(space), _prefixes(space)):
            if block.op == "skip" or _kind(block) in seen:
                continue
            seen.add(_kind(block))
            ins, outs = _boundary(plain, prefix)
            src = export_block(block, folder / "blocks" / f"{block.key()}.onnx")
            shape = (1, block.cin, block.h, block.w)
            tables = {"fp16": fp16_model(src), "int8": qdq_model(src, shape)}
            for precision, engine in engines.items():
                cut = _cut(engine, ins, [_past_qdq(engine, o) for o in outs])
                table = onnx.load(str(tables[precision]))
                table = _cut(table, [i.name for i in table.graph.input],
                             [o.name for o in table.graph.output])
                assert _signature(cut) == _signature(table), (block.key(), precision)
    return seen


def test_tiny_blocks_in_tables_are_the_engines_blocks(tmp_path):
    from hwnas.spaces import load_space

    space = load_space("tiny-32")
    seen = _compare(space, tmp_path)
    assert {k[0] for k in seen} == {"stem", "mbconv", "head"}
    assert {(k[1], k[2], k[6]) for k in seen if k[0] == "mbconv" and k[2] != 1} == {
        (k, e, r) for k in (3, 5, 7) for e in (3, 6) for r in (False, True)}


@pytest.mark.heavy
def test_proxyless_blocks_in_tables_are_the_engines_blocks(tmp_path):
    from hwnas.spaces import load_space

    space = load_space("proxyless-mobile")
    seen = _compare(space, tmp_path)
    assert {(k[1], k[2], k[6]) for k in seen if k[0] == "mbconv" and k[2] != 1} == {
        (k, e, r) for k in (3, 5, 7) for e in (3, 6) for r in (False, True)}


def test_both_sides_call_the_one_recipe(monkeypatch, tmp_path):
    """The profilers' and the engines' conversions go through ``hwnas_profilers.convert``
    (replaced here by a recorder, so a second private copy of the recipe would fail it)."""
    from hwnas.engines import quantize as qz
    from hwnas_profilers import backends, convert

    calls = []
    monkeypatch.setattr(convert, "to_fp16", lambda s, d: calls.append(("fp16", s)) or Path(d))
    monkeypatch.setattr(convert, "to_qdq_int8",
                        lambda s, d, b: calls.append(("int8", s)) or Path(d))
    monkeypatch.setattr(backends, "onnx_precision", lambda p: "fp32")
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "m.onnx"
    src.write_bytes(b"not read by the recorder")
    backends.fp16_model(src)
    backends.qdq_model(src, (1, 3, 8, 8))
    qz.export_fp16(src, tmp_path / "h.onnx")
    qz.ptq_onnx(src, tmp_path / "q.onnx", qz.calibration_images(None, (1, 3, 8, 8), 2, 0))
    assert [c[0] for c in calls] == ["fp16", "int8", "fp16", "int8"]
