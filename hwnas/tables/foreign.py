"""Import the latency lookup tables of ProxylessNAS and once-for-all (YAML).

Their keys are ``-``-joined fields: ``expanded_conv-input:HxWxC-output:HxWxC-expand:E-
kernel:K-stride:S-idskip:R[-se:0|1-hs:0|1]`` for MBConv blocks, and ``Conv`` (stem),
``Conv_1`` (final 1x1 expansion), ``AvgPool2D``, ``Conv_2`` (OFA's feature-mix 1x1) and
``Logits`` (pool + classifier) for the fixed parts. ``expand`` is a ratio in the
ProxylessNAS file and the middle channel count in the OFA file. Values are
``{count, mean, std}`` (``var`` in the ProxylessNAS file) in milliseconds.

hwnas's head block is conv1x1 + pool + classifier, so the imported head figure is the sum
of every fixed tail entry of the file (Conv_1 [+ AvgPool2D + Conv_2] + Logits). Both
projects add up per-layer figures with no overhead term and treat a skipped layer as
free; the import keeps that: overhead 0, calibration identity, skip blocks cost 0.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path
from typing import Any, Mapping

from hwnas_profilers.fileformat import echo, number

from ..blocks import Block
from ..errors import TableError, UserError
from ..spaces import SearchSpace, load_space
from .device import Calibration, DeviceTable, LatencyStat

FORMATS: dict[str, dict[str, Any]] = {
    "proxylessnas": {"expand": "ratio", "stem_act": "relu6", "default_space": "proxyless-mobile",
                     "spread": "var"},
    "ofa": {"expand": "channels", "stem_act": "hswish", "default_space": None, "spread": "std"},
}
_FIELD = re.compile(r"^(?P<name>[a-z]+):(?P<val>[0-9x]+)$")
_TAIL = ("Conv_1", "AvgPool2D", "Conv_2", "Logits")


def _parse_key(key: str, where: str) -> tuple[str, dict[str, str]]:
    if not isinstance(key, str) or len(key) > 400:
        raise TableError(f"{where}: a layer key must be a string, got {echo(key)}")
    kind, *rest = key.split("-")
    fields = {}
    for tok in rest:
        m = _FIELD.match(tok)
        if not m:
            raise TableError(f"{where}: cannot read field {echo(tok)} of the key")
        fields[m["name"]] = m["val"]
    return kind, fields


def _hwc(val: str, where: str) -> tuple[int, int, int]:
    parts = str(val).split("x")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 6 and int(p) > 0 for p in parts):
        raise TableError(f"{where}: expected HxWxC of positive integers, got {echo(val)}")
    h, w, c = (int(p) for p in parts)
    return h, w, c


def _count(fields: Mapping[str, str], name: str, where: str) -> int:
    if name not in fields:
        raise TableError(f"{where}: missing field {name!r}")
    v = fields[name]
    if not v.isdigit() or len(v) > 6:
        raise TableError(f"{where}: field {name!r} must be a positive integer, got {echo(v)}")
    return int(v)


def _stat(val: Any, fmt: str, where: str) -> tuple[float, float, int]:
    if not isinstance(val, Mapping) or "mean" not in val:
        raise TableError(f"{where}: expected a mapping with count/mean/{FORMATS[fmt]['spread']}")
    mean = number(val["mean"], f"{where}: mean", 0.0, 1e7, error=TableError)
    if "var" in val:
        spread = math.sqrt(number(val["var"], f"{where}: var", 0.0, 1e14, error=TableError))
    else:
        spread = number(val.get("std", 0.0), f"{where}: std", 0.0, 1e7, error=TableError)
    count = number(val.get("count", 0) or 0, f"{where}: count", 0, 1e12, integer=True,
                   error=TableError)
    return mean, spread, int(count)


def _mbconv(fields: dict[str, str], fmt: str, where: str) -> Block:
    for name in ("input", "output"):
        if name not in fields:
            raise TableError(f"{where}: missing field {name!r}")
    h, w, cin = _hwc(fields["input"], where)
    ho, wo, cout = _hwc(fields["output"], where)
    k, s, e = (_count(fields, n, where) for n in ("kernel", "stride", "expand"))
    if FORMATS[fmt]["expand"] == "channels":
        if e % cin:
            raise TableError(f"{where}: middle channels {e} are not a multiple of input {cin}")
        e //= cin
    act = "hswish" if fields.get("hs") == "1" else ("relu" if fmt == "ofa" else "relu6")
    try:
        b = Block("mbconv", h, w, cin, cout, kernel=k, expand=e, stride=s,
                  se=fields.get("se") == "1", act=act, residual=fields.get("idskip") == "1")
    except UserError as exc:
        raise TableError(f"{where}: {exc}") from None
    if b.out_shape != (ho, wo, cout):
        raise TableError(f"{where}: output {ho}x{wo}x{cout} does not follow from the input and "
                         f"stride (expected {'x'.join(map(str, b.out_shape))})")
    return b


def import_foreign(path: "str | Path", fmt: str, space: "str | SearchSpace | None" = None
                   ) -> DeviceTable:
    """Read a ProxylessNAS or once-for-all YAML table into a :class:`DeviceTable`.

    With a space (default ``proxyless-mobile`` for the ProxylessNAS format), the table must
    cover every block of it; its skip blocks are added at zero cost.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown table format {fmt!r}; known: {', '.join(FORMATS)}")
    from ..fileio import read_yaml

    p = Path(path)
    raw = read_yaml(p, "foreign table")
    if not isinstance(raw, Mapping) or not raw:
        raise TableError(f"foreign table {p} must be a non-empty YAML mapping of layer keys")
    entries: dict[str, LatencyStat] = {}
    stem: Block | None = None
    tail: dict[str, tuple[float, float, int]] = {}
    tail_shapes: dict[str, dict[str, str]] = {}
    for key, val in raw.items():
        where = f"{p.name}: {key}"
        kind, fields = _parse_key(key, where)
        mean, spread, count = _stat(val, fmt, where)
        if kind == "expanded_conv":
            b = _mbconv(fields, fmt, where)
            entries[b.key()] = LatencyStat(mean, spread, count, extra=(("source_key", key),))
        elif kind == "Conv":
            h, w, c = _hwc(fields.get("input", ""), where)
            ho, wo, co = _hwc(fields.get("output", ""), where)
            stride = round(h / ho)
            if stride < 1 or ho * stride != h or wo * stride != w:
                raise TableError(f"{where}: output {ho}x{wo} does not follow from input {h}x{w} "
                                 "by an integer stride")
            try:
                stem = Block("stem", h, w, c, co, kernel=3, stride=stride,
                             act=FORMATS[fmt]["stem_act"])
            except UserError as exc:
                raise TableError(f"{where}: {exc}") from None
            entries[stem.key()] = LatencyStat(mean, spread, count, extra=(("source_key", key),))
        elif kind in _TAIL:
            tail[kind] = (mean, spread, count)
            tail_shapes[kind] = fields
        else:
            raise TableError(f"{where}: unknown layer type {kind!r} for format {fmt}")
    if "Conv_1" in tail and "Logits" in tail:
        h, w, c = _hwc(tail_shapes["Conv_1"].get("input", ""), f"{p.name}: Conv_1")
        feat = _hwc(tail_shapes["Conv_1"].get("output", ""), f"{p.name}: Conv_1")[2]
        classes = _count(tail_shapes["Logits"], "output", f"{p.name}: Logits")
        head_act = "hswish" if fmt == "ofa" else "relu6"
        try:
            head = Block("head", h, w, c, feat, classes=classes, act=head_act)
        except UserError as exc:
            raise TableError(f"{p.name}: head: {exc}") from None
        parts = [k for k in _TAIL if k in tail]
        entries[head.key()] = LatencyStat(
            sum(tail[k][0] for k in parts), math.sqrt(sum(tail[k][1] ** 2 for k in parts)),
            min(tail[k][2] for k in parts), extra=(("source_key", " + ".join(parts)),))
    sp = load_space(space) if space is not None else (
        load_space(FORMATS[fmt]["default_space"]) if FORMATS[fmt]["default_space"] else None)
    if sp is not None:
        for b in sp.unique_blocks():
            if b.op == "skip":
                entries.setdefault(b.key(), LatencyStat(0.0, 0.0, 0, extra=(
                    ("source_key", "skip costs nothing (convention of the source project)"),)))
        missing = [b.key() for b in sp.unique_blocks() if b.key() not in entries]
        if missing:
            raise TableError(f"{p.name} does not cover space {sp.name}: {len(missing)} block(s) "
                             f"missing, first {missing[0]}")
    meta = {
        "source": f"imported:{fmt}", "source_file": p.name, "backend": "tflite",
        "runtime": "TFLite benchmark_model", "precision": "fp32", "batch": 1,
        "device": {"name": "Google Pixel 1" if fmt == "proxylessnas" else "Samsung Note10"},
        "threads": 1 if fmt == "proxylessnas" else None,
        "protocol": {"statistic": "published mean (stored as median_ms)",
                     "spread": "published standard deviation"},
        "imported": _dt.date.today().isoformat(),
    }
    return DeviceTable(meta, entries, sp.name if sp else "", sp.id if sp else "", 0.0,
                       Calibration(1.0, 0.0, 0, (("note", "additive, as in the source project"),)))
