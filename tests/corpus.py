"""A generated corpus of hostile inputs, for every file kind hwnas reads and every command
that reads one. Used by ``tests/test_corpus.py`` (every case in-process: exit
status 2, one line, no traceback, no existing file changed) and by
``benchmarks/fault_corpus.py`` (every case as its own process: peak memory, wall time,
killed processes).

A case is a category, a name, the files it writes into its own folder and the command
line (``{d}`` stands for that folder). Everything is generated here from the shipped
tables, the built-in spaces and the third-party tables in ``../shared/data``: no case
file is checked in, so the corpus grows by editing one list. The categories of files that
run code, the cache, run files, image folders, the environment, numeric bounds and links
live in ``tests/corpus_code.py``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
LUTS = ROOT.parent / "shared" / "data" / "third_party_luts"
DEVICE = ROOT / "hwnas" / "device_tables" / "tiny-32_onnxruntime_cpu_fp32.json"
ARCH = "tiny-32:k3e3,k3e3,k3e3,k3e3,k3e3,k3e3"


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]
    files: dict[str, "bytes | str"] = field(default_factory=dict)
    setup: Callable[[Path], object] | None = None  # extra preparation of the case folder
    tool: str = "hwnas"  # or "hwnas-profilers", the device-side command
    env: dict[str, str] = field(default_factory=dict)  # ``{d}`` stands for the case folder

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    def materialise(self, d: Path) -> list[str]:
        """Write the case's files into ``d``; return its command line."""
        d.mkdir(parents=True, exist_ok=True)
        for rel, content in self.files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        if self.setup is not None:
            self.setup(d)
        return [a.replace("{d}", str(d)) for a in self.argv]

    def environment(self, d: Path) -> dict[str, str]:
        """The variables this case sets, with ``{d}`` filled in."""
        return {k: v.replace("{d}", str(d)) for k, v in self.env.items()}


# ------------------------------------------------------------------ helpers
def _deep_json(n: int) -> str:
    return "[" * n + "]" * n


def _deep_map_json(n: int) -> str:
    return '{"a": ' * n + "1" + "}" * n


def _sparse(size: int) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        with open(d / "big.json", "wb") as fh:  # sparse: no real disk used
            fh.truncate(size)
    return make


def _device_base() -> dict:
    return json.loads(DEVICE.read_text())


def _first_key(d: dict) -> str:
    return next(k for k, v in d["entries"].items() if v.get("status", "ok") == "ok")


def _acc_base() -> dict:
    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    return {"schema": 1, "kind": "hwnas.accuracy_table", "space": sp.name, "space_id": sp.id,
            "provenance": {},
            "layers": [{c: 0.5 + 0.01 * i for i, c in enumerate(layer.choices)}
                       for layer in sp.layers]}


def _acc_csv() -> str:
    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    rows = ["layer,choice,score"]
    for i, layer in enumerate(sp.layers):
        rows += [f"{i},{c},{0.5 + 0.01 * j}" for j, c in enumerate(layer.choices)]
    return "\n".join(rows) + "\n"


def _npy(arr_header: dict, body: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, arr_header)
    else:
        np.lib.format.write_array_header_2_0(buf, arr_header)
    return buf.getvalue() + body


def _npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def _arr(a) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False) if a.dtype != object else np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _savez(**arrays) -> bytes:
    return _npz({f"{k}.npy": _arr(v) for k, v in arrays.items()})


# ------------------------------------------------------------ device tables
def _device_texts() -> dict[str, "str | bytes"]:
    base = _device_base()
    key = _first_key(base)
    out: dict[str, "str | bytes"] = {}

    def mut(name: str, fn) -> None:
        d = json.loads(json.dumps(base))
        fn(d)
        out[name] = json.dumps(d)

    def entry(field_: str, value) -> Callable[[dict], None]:
        return lambda d: d["entries"][key].__setitem__(field_, value)

    text = json.dumps(base)
    out["deep-nesting"] = _deep_json(5000)
    out["deep-nesting-in-meta"] = text.replace('"meta": {', '"meta": {"x": ' + _deep_map_json(3000)
                                               + ', ', 1)
    out["median-400-digit-integer"] = text.replace(
        f'"median_ms": {json.dumps(base["entries"][key]["median_ms"])}', '"median_ms": ' + "9" * 400, 1)
    out["median-1e400"] = text.replace(
        f'"median_ms": {json.dumps(base["entries"][key]["median_ms"])}', '"median_ms": 1e400', 1)
    out["median-NaN-literal"] = text.replace(
        f'"median_ms": {json.dumps(base["entries"][key]["median_ms"])}', '"median_ms": NaN', 1)
    out["median-Infinity-literal"] = text.replace(
        f'"median_ms": {json.dumps(base["entries"][key]["median_ms"])}', '"median_ms": Infinity', 1)
    out["n-40-digit"] = text.replace('"n": ', '"n": ' + "1" * 40 + ', "n_was": ', 1)
    mut("n-many", entry("n", "many"))
    mut("n-negative", entry("n", -3))
    mut("n-float", entry("n", 2.5))
    mut("n-huge", entry("n", 10 ** 25))
    mut("spread-abc", entry("spread_ms", "abc"))
    mut("spread-list", entry("spread_ms", [1]))
    mut("median-string", entry("median_ms", "0.1"))
    mut("median-negative", entry("median_ms", -1.0))
    mut("median-bool", entry("median_ms", True))
    mut("median-null", entry("median_ms", None))
    mut("median-missing", lambda d: d["entries"][key].pop("median_ms"))
    mut("floor-string", entry("floor_ms", "fast"))
    mut("floor-missing", lambda d: d["entries"][key].pop("floor_ms", None) or d["entries"][key].pop("median_ms"))
    mut("p90-object", entry("p90_ms", {"a": 1}))
    mut("unknown-status", entry("status", "maybe"))
    mut("entry-string", lambda d: d["entries"].__setitem__(key, "0.1 ms"))
    mut("entry-list", lambda d: d["entries"].__setitem__(key, [0.1]))
    mut("entries-list", lambda d: d.__setitem__("entries", list(d["entries"].values())))
    mut("entries-null", lambda d: d.__setitem__("entries", None))
    mut("key-garbage", lambda d: d["entries"].__setitem__("foo_bar", {"median_ms": 1}))
    mut("key-10k-chars", lambda d: d["entries"].__setitem__("mbconv_" + "x" * 10000, {"median_ms": 1}))
    mut("key-huge-dims", lambda d: d["entries"].__setitem__(
        "mbconv_i999999999x999999999x3_o16_k3_e3_s1_se0_relu6_r0", {"median_ms": 1}))
    mut("key-400-digit-dim", lambda d: d["entries"].__setitem__(
        "mbconv_i" + "9" * 400 + "x3x3_o16_k3_e3_s1_se0_relu6_r0", {"median_ms": 1}))
    mut("overhead-string", lambda d: d.__setitem__("overhead_ms", "none"))
    mut("overhead-negative", lambda d: d.__setitem__("overhead_ms", -5))
    mut("calibration-list", lambda d: d.__setitem__("calibration", [1, 0]))
    mut("calibration-scale-zero", lambda d: d.__setitem__("calibration", {"scale": 0, "offset_ms": 0}))
    mut("calibration-scale-string", lambda d: d.__setitem__("calibration", {"scale": "x"}))
    mut("calibration-fitted-on-string", lambda d: d.__setitem__(
        "calibration", {"scale": 1.0, "offset_ms": 0.0, "fitted_on": "many"}))
    mut("meta-list", lambda d: d.__setitem__("meta", []))
    mut("meta-null", lambda d: d.__setitem__("meta", None))
    mut("figure-unknown", lambda d: d["meta"].setdefault("protocol", {}).__setitem__("figure", "bogus"))
    mut("protocol-string", lambda d: d["meta"].__setitem__("protocol", "fast"))
    mut("device-list", lambda d: d["meta"].__setitem__("device", ["a laptop"]))
    mut("space-id-list", lambda d: d.__setitem__("space_id", ["x"]))
    mut("kind-missing", lambda d: d.pop("kind"))
    mut("kind-other", lambda d: d.__setitem__("kind", "hwnas.accuracy_table"))
    mut("schema-2", lambda d: d.__setitem__("schema", 2))
    mut("schema-400-digit", lambda d: d.__setitem__("schema", 10 ** 399))
    out["top-list"] = "[]"
    out["top-string"] = '"a table"'
    out["top-null"] = "null"
    out["empty-file"] = ""
    out["whitespace"] = "  \n\t "
    out["truncated"] = text[: len(text) // 2]
    out["binary"] = bytes(range(256)) * 8
    out["utf16"] = text.encode("utf-16")
    out["trailing-garbage"] = text + "}}"
    out["yaml-not-json"] = "kind: hwnas.device_table\nschema: 1\n"
    return out


def _device_cases() -> list[Case]:
    cases = []
    acc = json.dumps(_acc_base())
    for name, content in _device_texts().items():
        files = {"table.json": content, "acc.json": acc}
        for cmd, argv in (
                ("predict", ["predict", ARCH, "--table", "{d}/table.json"]),
                ("search", ["search", "--table", "{d}/table.json", "--accuracy", "{d}/acc.json",
                            "--budget-ms", "5"]),
                ("show", ["tables", "show", "{d}/table.json"])):
            cases.append(Case("device-table", f"{name}@{cmd}", argv, dict(files)))
    for cmd, argv in (("predict", ["predict", ARCH, "--table", "{d}/big.json"]),
                      ("show", ["tables", "show", "{d}/big.json"])):
        cases.append(Case("device-table", f"file-of-70-MiB@{cmd}", argv, setup=_sparse(70 * 2**20)))
    empty = {**_device_base(), "entries": {}}
    cases.append(Case("device-table", "entries-empty@predict",
                      ["predict", ARCH, "--table", "{d}/t.json"], {"t.json": json.dumps(empty)}))
    cases.append(Case("device-table", "a-folder@predict", ["predict", ARCH, "--table", "{d}"]))
    cases.append(Case("device-table", "missing@predict",
                      ["predict", ARCH, "--table", "{d}/nothing.json"]))
    cases.append(Case("device-table", "diff-deep@diff",
                      ["tables", "diff", "{d}/a.json", str(DEVICE)], {"a.json": _deep_json(3000)}))
    return cases


# ---------------------------------------------------------- foreign tables
def _foreign_cases() -> list[Case]:
    base = (LUTS / "proxylessnas_pixel1_mobile.yaml").read_text()
    ofa = (LUTS / "ofa_note10_224.yaml").read_text()
    stem = "Conv-input:224x224x3-output:112x112x32:"
    first = base.split("\n")[0]
    bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8))
    texts: dict[str, "str | bytes"] = {
        "alias-bomb": bomb,
        "alias-bomb-in-mean": bomb + stem + "\n  count: 1\n  mean: *i\n  var: 0.1\n",
        "merge-key-bomb": "a: &a {x: 1, y: 2}\n" + "".join(
            f"b{i}: &b{i} {{<<: *{'a' if i == 0 else f'b{i - 1}'}, z{i}: 1}}\n" for i in range(30)),
        "deep-flow-sequence": "[" * 3000 + "]" * 3000,
        "deep-block-mapping": "".join("  " * i + f"k{i}:\n" for i in range(2000)) + "  " * 2000 + "v",
        "count-string": base.replace("count: 982", "count: many", 1),
        "count-1e400": base.replace("count: 982", "count: 1e400", 1),
        "count-negative": base.replace("count: 982", "count: -5", 1),
        "count-float": base.replace("count: 982", "count: 2.5", 1),
        "mean-string": base.replace("mean: 4.083755600814664", "mean: abc", 1),
        "mean-1e400": base.replace("mean: 4.083755600814664", "mean: 1e400", 1),
        "mean-negative": base.replace("mean: 4.083755600814664", "mean: -1", 1),
        "mean-nan": base.replace("mean: 4.083755600814664", "mean: .nan", 1),
        "mean-inf": base.replace("mean: 4.083755600814664", "mean: .inf", 1),
        "mean-timestamp": base.replace("mean: 4.083755600814664", "mean: 2001-12-14", 1),
        "mean-list": base.replace("mean: 4.083755600814664", "mean: [1, 2]", 1),
        "mean-missing": base.replace("  mean: 4.083755600814664\n", "", 1),
        "var-string": base.replace("var: 0.2502372872758427", "var: abc", 1),
        "var-1e400": base.replace("var: 0.2502372872758427", "var: 1e400", 1),
        "var-negative": base.replace("var: 0.2502372872758427", "var: -4", 1),
        "stem-zero-output": base.replace(stem, "Conv-input:224x224x3-output:0x0x32:", 1),
        "stem-odd-stride": base.replace(stem, "Conv-input:224x224x3-output:97x97x32:", 1),
        "stem-zero-channels": base.replace(stem, "Conv-input:224x224x3-output:112x112x0:", 1),
        "key-without-input": base.replace("expanded_conv-input:112x112x16-", "expanded_conv-", 1),
        "key-without-output": base.replace("-output:56x56x24-expand:3-kernel:3-stride:2-idskip:0:",
                                           "-expand:3-kernel:3-stride:2-idskip:0:", 1),
        "hwc-two-fields": base.replace("input:112x112x16", "input:112x112", 1),
        "hwc-letters": base.replace("input:112x112x16", "input:axbxc", 1),
        "hwc-huge": base.replace("input:112x112x16", "input:99999999999x112x16", 1),
        "hwc-zero": base.replace("input:112x112x16", "input:0x112x16", 1),
        "kernel-zero": base.replace("kernel:3-stride:2", "kernel:0-stride:2", 1),
        "kernel-even": base.replace("kernel:3-stride:2", "kernel:4-stride:2", 1),
        "stride-zero": base.replace("kernel:3-stride:2", "kernel:3-stride:0", 1),
        "expand-zero": base.replace("expand:3-kernel:3-stride:2", "expand:0-kernel:3-stride:2", 1),
        "field-malformed": base.replace("-stride:2-", "-stride=2-", 1),
        "logits-output-letters": base.replace("Logits-input:7x7x1280-output:1000",
                                              "Logits-input:7x7x1280-output:many", 1),
        "conv1-without-input": base.replace("Conv_1-input:7x7x320-", "Conv_1-", 1),
        "unknown-layer-type": base.replace(stem, "Pool-input:224x224x3-output:112x112x32:", 1),
        "value-scalar": first + " 3\n",
        "value-list": first + "\n- 1\n- 2\n",
        "top-list": "- a\n- b\n",
        "top-scalar": "42\n",
        "top-null": "null\n",
        "empty": "",
        "python-object-tag": "!!python/object/apply:os.system ['echo pwned']\n",
        "python-name-tag": "a: !!python/name:os.system\n",
        "binary": bytes(range(256)) * 4,
        "truncated": base[: len(base) // 3] + "\n  mea",
        "tabs": "a:\n\tb: 1\n",
        "key-int": "123:\n  count: 1\n  mean: 1\n  var: 0\n",
        "key-null": "~:\n  count: 1\n  mean: 1\n  var: 0\n",
        "key-10k-chars": "expanded_conv-" + "x" * 10000 + ":\n  count: 1\n  mean: 1\n  var: 0\n",
        "not-covering-the-space": first + "\n  count: 1\n  mean: 1\n  var: 0\n",
    }
    cases = [Case("foreign-table", name, ["tables", "import", "{d}/t.yaml", "--format",
                                          "proxylessnas", "--out", "{d}/out.json"],
                  {"t.yaml": text}) for name, text in texts.items()]
    ofa_texts = {
        "ofa-expand-not-multiple": ofa.replace("expand:24-kernel:3", "expand:25-kernel:3", 1),
        "ofa-std-string": ofa.replace("std: 0.01726798413249215", "std: wide", 1),
        "ofa-std-1e400": ofa.replace("std: 0.01726798413249215", "std: 1e400", 1),
    }
    cases += [Case("foreign-table", name, ["tables", "import", "{d}/t.yaml", "--format", "ofa",
                                           "--space", "tiny-32", "--out", "{d}/out.json"],
                   {"t.yaml": text}) for name, text in ofa_texts.items()]
    cases.append(Case("foreign-table", "file-of-70-MiB", [
        "tables", "import", "{d}/big.json", "--format", "ofa", "--out", "{d}/out.json"],
        setup=_sparse(70 * 2**20)))
    return cases


# ---------------------------------------------------------------- spaces
def _space_texts() -> dict[str, tuple[str, "str | bytes"]]:
    from hwnas.spaces import BUILTIN_SPECS

    base = json.loads(json.dumps(BUILTIN_SPECS["tiny-32"]))
    out: dict[str, tuple[str, "str | bytes"]] = {}

    def mut(name: str, fn, suffix: str = "json") -> None:
        d = json.loads(json.dumps(base))
        fn(d)
        out[name] = (suffix, json.dumps(d))

    def stage(k: str, v) -> Callable[[dict], None]:
        return lambda d: d["stages"][0].__setitem__(k, v)

    mut("layers-int", lambda d: (d.pop("stages"), d.__setitem__("layers", 5)))
    mut("layers-null", lambda d: (d.pop("stages"), d.__setitem__("layers", None)))
    mut("layers-and-stages", lambda d: d.__setitem__("layers", []))
    mut("stages-null", lambda d: d.__setitem__("stages", None))
    mut("stages-int", lambda d: d.__setitem__("stages", 5))
    mut("stages-10000", lambda d: d.__setitem__("stages", [dict(d["stages"][2])] * 10000))
    mut("layers-10000", lambda d: (d.pop("stages"), d.__setitem__(
        "layers", [{"out": 8, "stride": 1, "choices": ["k3e3"]}] * 10000)))
    mut("repeat-1e9", stage("n", 10 ** 9))
    mut("repeat-float-1e9", stage("n", 1e9))
    mut("repeat-negative", stage("n", -1))
    mut("repeat-string", stage("n", "3"))
    mut("repeat-bool", stage("n", True))
    mut("choices-string", stage("choices", "k3e3"))
    mut("choices-null", stage("choices", None))
    mut("choices-ints", stage("choices", [1, 2]))
    mut("choices-10000", stage("choices", [f"k3e{i}" for i in range(10000)]))
    mut("choices-unknown", stage("choices", ["k4e3"]))
    mut("choices-expand-200", stage("choices", ["k3e200"]))
    mut("choices-empty", stage("choices", []))
    mut("out-zero", stage("out", 0))
    mut("out-huge", stage("out", 10 ** 12))
    mut("stride-3", stage("stride", 3))
    mut("input-huge", lambda d: d.__setitem__("input", [10 ** 9, 10 ** 9, 3]))
    mut("input-string", lambda d: d.__setitem__("input", "224"))
    mut("input-two", lambda d: d.__setitem__("input", [32, 32]))
    mut("input-floats", lambda d: d.__setitem__("input", [32.0, 32.0, 3.0]))
    mut("classes-zero", lambda d: d.__setitem__("classes", 0))
    mut("classes-huge", lambda d: d.__setitem__("classes", 10 ** 15))
    mut("stem-out-zero", lambda d: d["stem"].__setitem__("out", 0))
    mut("stem-kernel-100", lambda d: d["stem"].__setitem__("kernel", 101))
    mut("stem-list", lambda d: d.__setitem__("stem", [16]))
    mut("head-missing-out", lambda d: d.__setitem__("head", {}))
    mut("head-out-negative", lambda d: d.__setitem__("head", {"out": -1}))
    mut("unknown-field", lambda d: d.__setitem__("colour", "blue"))
    mut("name-list", lambda d: d.__setitem__("name", ["a"]))
    mut("name-10k", lambda d: d.__setitem__("name", "n" * 10000))
    mut("act-unknown", lambda d: d.__setitem__("act", "gelu9"))
    mut("fixed-dict", lambda d: d.__setitem__("fixed", {"out": 8}))
    mut("fixed-bad-choice", lambda d: d.__setitem__("fixed", [{"out": 8, "choice": "zz"}]))
    mut("fixed-100", lambda d: d.__setitem__("fixed", [{"out": 8, "choice": "k3e1"}] * 100))
    mut("blocks-foreign-key", lambda d: (d.pop("stages"), d.__setitem__(
        "layers", [{"blocks": ["mbconv_i999x999x9_o9_k3_e3_s1_se0_relu6_r0"]}])))
    mut("blocks-400-digit", lambda d: (d.pop("stages"), d.__setitem__(
        "layers", [{"blocks": ["mbconv_i" + "9" * 400 + "x9x9_o9_k3_e3_s1_se0_relu6_r0"]}])))
    mut("blocks-int", lambda d: (d.pop("stages"), d.__setitem__("layers", [{"blocks": 7}])))
    out["deep-json"] = ("json", _deep_json(5000))
    out["deep-yaml"] = ("yaml", "[" * 3000 + "]" * 3000)
    out["alias-bomb-yaml"] = ("yaml", _foreign_bomb())
    out["alias-repeat-yaml"] = ("yaml", "name: x\nstages: &s\n  - {out: 8, n: 2, choices: [k3e3]}\n"
                                "layers: *s\n")
    out["python-tag-yaml"] = ("yaml", "name: !!python/object/apply:os.system ['echo pwned']\n")
    out["empty-yaml"] = ("yaml", "")
    out["empty-json"] = ("json", "")
    out["binary-json"] = ("json", bytes(range(256)))
    out["list-top"] = ("json", "[1, 2]")
    out["trailing-garbage"] = ("json", json.dumps(base) + "]")
    out["nan-json"] = ("json", json.dumps(base).replace('"classes": 10', '"classes": NaN'))
    return out


def _foreign_bomb() -> str:
    return "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8))


def _space_cases() -> list[Case]:
    cases = []
    for name, (suffix, text) in _space_texts().items():
        f = f"space.{suffix}"
        cases.append(Case("space-file", f"{name}@show", ["space", "show", "{d}/" + f], {f: text}))
        cases.append(Case("space-file", f"{name}@sample",
                          ["arch", "sample", "--space", "{d}/" + f, "--json"], {f: text}))
    cases.append(Case("space-file", "unknown-name@show", ["space", "show", "tiny-33"]))
    cases.append(Case("space-file", "missing-file@show", ["space", "show", "{d}/none.yaml"]))
    cases.append(Case("space-file", "a-folder@show", ["space", "show", "{d}/x.yaml"],
                      setup=lambda d: (d / "x.yaml").mkdir()))
    return cases


# ------------------------------------------------------- accuracy tables
def _accuracy_cases() -> list[Case]:
    base = _acc_base()
    csv_ok = _acc_csv()
    out: dict[str, tuple[str, "str | bytes"]] = {}

    def mut(name: str, fn) -> None:
        d = json.loads(json.dumps(base))
        fn(d)
        out[name] = ("json", json.dumps(d))

    first = next(iter(base["layers"][0]))
    mut("choices-null", lambda d: d["layers"][0].__setitem__(first, None))
    mut("score-string", lambda d: d["layers"][0].__setitem__(first, "high"))
    mut("score-bool", lambda d: d["layers"][0].__setitem__(first, True))
    mut("score-list", lambda d: d["layers"][0].__setitem__(first, [0.5]))
    mut("layers-null", lambda d: d.__setitem__("layers", None))
    mut("layers-dict", lambda d: d.__setitem__("layers", {"0": {}}))
    mut("layers-of-lists", lambda d: d.__setitem__("layers", [[0.5]] * 6))
    mut("layers-too-few", lambda d: d["layers"].pop())
    mut("layers-too-many", lambda d: d["layers"].append(d["layers"][0]))
    mut("choice-unknown", lambda d: d["layers"][0].__setitem__("k9e9", 0.5))
    mut("choice-missing", lambda d: d["layers"][0].pop(first))
    mut("space-id-other", lambda d: d.__setitem__("space_id", "0123456789ab"))
    mut("space-unknown", lambda d: (d.pop("space_id"), d.__setitem__("space", "tiny-33")))
    mut("space-spec-bad", lambda d: d.__setitem__("space_spec", {"name": "x", "layers": 5}))
    mut("space-spec-list", lambda d: d.__setitem__("space_spec", [1]))
    mut("provenance-list", lambda d: d.__setitem__("provenance", [1]))
    mut("kind-missing", lambda d: d.pop("kind"))
    mut("schema-string", lambda d: d.__setitem__("schema", "1"))
    text = json.dumps(base)
    out["score-400-digit"] = ("json", text.replace("0.5,", "9" * 400 + ",", 1))
    out["score-1e400"] = ("json", text.replace("0.5,", "1e400,", 1))
    out["score-NaN"] = ("json", text.replace("0.5,", "NaN,", 1))
    out["deep"] = ("json", _deep_json(5000))
    out["truncated"] = ("json", text[:200])
    lines = csv_ok.splitlines()
    out["csv-field-over-limit"] = ("csv", csv_ok + "0,k3e3," + "1" * 200_000 + "\n")
    out["csv-quoted-field-over-limit"] = ("csv", csv_ok + '0,"' + "x" * 200_000 + '",1\n')
    out["csv-nul-byte"] = ("csv", csv_ok.replace("0.5", "0.\x005", 1))
    out["csv-header-wrong"] = ("csv", "a,b,c\n" + "\n".join(lines[1:]))
    out["csv-no-header"] = ("csv", "\n".join(lines[1:]))
    out["csv-empty"] = ("csv", "")
    out["csv-score-400-digit"] = ("csv", csv_ok.replace("0.5\n", "9" * 400 + "\n", 1))
    out["csv-score-1e400"] = ("csv", csv_ok.replace("0.5\n", "1e400\n", 1))
    out["csv-score-nan"] = ("csv", csv_ok.replace("0.5\n", "nan\n", 1))
    out["csv-score-inf"] = ("csv", csv_ok.replace("0.5\n", "-inf\n", 1))
    out["csv-score-text"] = ("csv", csv_ok.replace("0.5\n", "good\n", 1))
    out["csv-layer-negative"] = ("csv", csv_ok + "-1,k3e3,0.5\n")
    out["csv-layer-99"] = ("csv", csv_ok + "99,k3e3,0.5\n")
    out["csv-layer-400-digit"] = ("csv", csv_ok + "9" * 400 + ",k3e3,0.5\n")
    out["csv-layer-letters"] = ("csv", csv_ok + "x,k3e3,0.5\n")
    out["csv-duplicate"] = ("csv", csv_ok + lines[1] + "\n")
    out["csv-choice-unknown"] = ("csv", csv_ok + "0,k9e9,0.5\n")
    out["csv-choice-missing"] = ("csv", "\n".join(lines[:-1]) + "\n")
    out["csv-two-fields"] = ("csv", csv_ok + "0,k3e3\n")
    out["csv-binary"] = ("csv", bytes(range(1, 256)) * 4)
    cases = []
    for name, (suffix, content) in out.items():
        f = f"acc.{suffix}"
        cases.append(Case("accuracy-table", name, [
            "search", "--table", str(DEVICE), "--accuracy", "{d}/" + f, "--budget-ms", "5"],
            {f: content}))
    cases.append(Case("accuracy-table", "csv-without-space", [
        "search", "--table", "{d}/t.json", "--accuracy", "{d}/acc.csv", "--budget-ms", "5"],
        {"acc.csv": csv_ok, "t.json": json.dumps({**_device_base(), "space_id": ""})}))
    return cases


# -------------------------------------------------------- architectures
def _arch_cases() -> list[Case]:
    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    base = {"schema": 1, "kind": "hwnas.architecture", "space": sp.name, "space_id": sp.id,
            "choices": ["k3e3"] * 6}
    out: dict[str, str] = {}

    def mut(name: str, fn) -> None:
        d = json.loads(json.dumps(base))
        fn(d)
        out[name] = json.dumps(d)

    mut("choices-null", lambda d: d.__setitem__("choices", None))
    mut("choices-ints", lambda d: d.__setitem__("choices", [1] * 6))
    mut("choices-10000", lambda d: d.__setitem__("choices", ["k3e3"] * 10000))
    mut("choices-too-few", lambda d: d.__setitem__("choices", ["k3e3"]))
    mut("choice-unknown", lambda d: d["choices"].__setitem__(0, "k9e9"))
    mut("choice-10k-chars", lambda d: d["choices"].__setitem__(0, "k" * 10000))
    mut("space-id-other", lambda d: d.__setitem__("space_id", "0123456789ab"))
    mut("space-id-list", lambda d: d.__setitem__("space_id", [1]))
    mut("kind-missing", lambda d: d.pop("kind"))
    mut("latency-string", lambda d: d.__setitem__("latency_ms", "fast"))
    mut("flops-float", lambda d: d.__setitem__("flops", 1.5))  # the old name, still read
    mut("macs-float", lambda d: d.__setitem__("macs", 1.5))
    mut("score-object", lambda d: d.__setitem__("score", {"a": 1}))
    out["flops-1e400"] = json.dumps(base)[:-1] + ', "flops": 1e400}'
    out["deep"] = _deep_json(5000)
    out["empty"] = ""
    cases = []
    for name, text in out.items():
        cases.append(Case("architecture", f"{name}@show", ["arch", "show", "{d}/a.json"],
                          {"a.json": text}))
        cases.append(Case("architecture", f"{name}@predict",
                          ["predict", "{d}/a.json", "--table", str(DEVICE)], {"a.json": text}))
    for name, ref in (("notation-empty", "tiny-32:"), ("notation-unknown-space", "tiny-33:k3e3"),
                      ("notation-100k", "tiny-32:" + ",".join(["k3e3"] * 20000)),
                      ("notation-colons", "::::"), ("notation-no-colon", "k3e3,k3e3")):
        cases.append(Case("architecture", f"{name}@show", ["arch", "show", ref]))
    return cases


# ------------------------------------------------------- training data
def _data_cases() -> list[Case]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8)).astype(np.float32)
    y = np.arange(40) % 4
    ok = _savez(x=x, y=y)
    xn = x.copy()
    xn[3, 2, 1] = np.nan
    xi = x.copy()
    xi[0, 0, 0] = np.inf
    huge = _npy({"descr": "<f4", "fortran_order": False, "shape": (10 ** 7, 1000, 1000)})
    v3 = b"\x93NUMPY\x03\x00" + _npy({"descr": "<f4", "fortran_order": False, "shape": (4,)})[8:]
    pgm = "P5\n8 8\n255\n".encode() + bytes(64)
    npz: dict[str, bytes] = {
        "npz-truncated": ok[: len(ok) // 2],
        "npz-corrupt": ok[:40] + bytes(200) + ok[240:],
        "npz-not-zip": b"hello world" * 10,
        "npz-empty": b"",
        "npz-header-23TiB": _npz({"x.npy": huge, "y.npy": _arr(y)}),
        "npz-header-truncated-data": _npz({"x.npy": _npy({"descr": "<f4", "fortran_order": False,
                                                          "shape": (40, 8, 8)}, b"\0" * 100),
                                           "y.npy": _arr(y)}),
        "npz-version-3": _npz({"x.npy": v3, "y.npy": _arr(y)}),
        "npz-strings": _savez(x=np.array([["a"] * 8] * 8), y=y[:8]),
        "npz-objects": _savez(x=np.array([None, 1], dtype=object), y=y[:2]),
        "npz-no-x": _savez(z=x, y=y),
        "npz-zero-images": _savez(x=np.zeros((0, 8, 8), np.float32), y=np.zeros(0, np.int64)),
        "npz-zero-width": _savez(x=np.zeros((40, 8, 0), np.float32), y=y),
        "npz-5d": _savez(x=np.zeros((2, 2, 2, 2, 2), np.float32), y=y[:2]),
        "npz-labels-float": _savez(x=x, y=y.astype(np.float32)),
        "npz-labels-negative": _savez(x=x, y=-y - 1),
        "npz-labels-2d": _savez(x=x, y=y.reshape(20, 2)),
        "npz-labels-huge": _savez(x=x, y=y + 10 ** 9),
        "npz-length-mismatch": _savez(x=x, y=y[:10]),
        "npz-nan": _savez(x=xn, y=y),
        "npz-inf": _savez(x=xi, y=y),
        "npz-one-class": _savez(x=x, y=np.zeros(40, np.int64)),
        "npz-complex": _savez(x=x.astype(np.complex64), y=y),
    }
    cases = [Case("training-data", name, ["train", "--space", "tiny-32", "--data", "{d}/d.npz",
                                          "--out", "{d}/run", "--epochs", "1"], {"d.npz": b})
             for name, b in npz.items()]
    folders: dict[str, dict[str, bytes]] = {
        "pgm-maxval-0": {"a/1.pgm": pgm.replace(b"255", b"0"), "b/1.pgm": pgm},
        "pgm-header-garbage": {"a/1.pgm": b"P5\nxx yy\n255\n" + bytes(64), "b/1.pgm": pgm},
        "pgm-header-truncated": {"a/1.pgm": b"P5\n8", "b/1.pgm": pgm},
        "pgm-comment-no-newline": {"a/1.pgm": b"P5 #", "b/1.pgm": pgm},
        "pgm-data-truncated": {"a/1.pgm": pgm[:30], "b/1.pgm": pgm},
        "pgm-ascii-p2": {"a/1.pgm": b"P2\n2 2\n255\n1 2 3 4\n", "b/1.pgm": pgm},
        "pgm-zero-size": {"a/1.pgm": b"P5\n0 0\n255\n", "b/1.pgm": pgm},
        "pgm-huge-size": {"a/1.pgm": b"P5\n99999999 99999999\n255\n", "b/1.pgm": pgm},
        "npy-image-strings": {"a/1.npy": _arr(np.array([["a", "b"]])), "b/1.pgm": pgm},
        "npy-image-version-3": {"a/1.npy": v3, "b/1.pgm": pgm},
        "npy-image-huge-header": {"a/1.npy": huge, "b/1.pgm": pgm},
        "npy-image-nan": {"a/1.npy": _arr(np.full((8, 8), np.nan, np.float32)), "b/1.pgm": pgm},
        "npy-image-empty": {"a/1.npy": _arr(np.zeros((0, 8), np.float32)), "b/1.pgm": pgm},
        "png-garbage": {"a/1.png": b"\x89PNG\r\n\x1a\n" + bytes(50), "b/1.pgm": pgm},
        "one-class": {"a/1.pgm": pgm, "a/2.pgm": pgm},
        "no-images": {"a/readme.txt": b"nothing"},
    }
    for name, files in folders.items():
        cases.append(Case("training-data", name, ["train", "--space", "tiny-32", "--data",
                                                  "{d}/imgs", "--out", "{d}/run", "--epochs", "1"],
                          {f"imgs/{k}": v for k, v in files.items()}))
    cases.append(Case("training-data", "unknown-kind", ["train", "--space", "tiny-32", "--data",
                                                        "{d}/d.csv", "--out", "{d}/run"],
                      {"d.csv": "1,2\n"}))
    return cases


# ------------------------------------------------------------ checkpoints
def _checkpoint_payloads() -> dict[str, Callable[[], bytes]]:
    import torch

    from hwnas.spaces import load_space

    sp = load_space("tiny-32")
    spec = json.dumps(sp.to_dict())

    def payload(**over) -> bytes:
        d = {"kind": "hwnas.supernet_checkpoint", "schema": 1, "space_id": sp.id,
             "space_spec": spec, "target_id": sp.id, "target_spec": spec,
             "config": json.dumps({"seed": 0}),
             "progress": json.dumps({"meta_epoch": 0, "shrink_round": 0}),
             "model": {}, "init": {}, "optimizer": {}}
        for k, v in over.items():
            if v is _DROP:
                d.pop(k)
            else:
                d[k] = v
        buf = io.BytesIO()
        torch.save(d, buf)
        return buf.getvalue()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    def evil() -> bytes:
        buf = io.BytesIO()
        torch.save({"kind": "hwnas.supernet_checkpoint", "x": Evil()}, buf)
        return buf.getvalue()

    return {
        "config-not-text": lambda: payload(config={"seed": 0}),
        "config-json-list": lambda: payload(config="[1, 2]"),
        "config-invalid-json": lambda: payload(config="{seed"),
        "config-deep": lambda: payload(config=_deep_map_json(3000)),
        "config-seed-string": lambda: payload(config=json.dumps({"seed": "abc"})),
        "progress-missing": lambda: payload(progress=_DROP),
        "progress-epoch-string": lambda: payload(progress=json.dumps({"meta_epoch": "x"})),
        "progress-epoch-negative": lambda: payload(progress=json.dumps({"meta_epoch": -4})),
        "progress-epoch-huge": lambda: payload(progress=json.dumps({"meta_epoch": 10 ** 20})),
        "progress-base-target-int": lambda: payload(progress=json.dumps({"base_target": 5})),
        "optimizer-list": lambda: payload(optimizer=[1, 2]),
        "optimizer-no-groups": lambda: payload(optimizer={"state": {}}),
        "model-list": lambda: payload(model=[1, 2]),
        "model-strings": lambda: payload(model={"w": "tensor"}),
        "model-wrong-shapes": lambda: payload(model={"stem.weight": torch.zeros(1)}),
        "kind-missing": lambda: payload(kind=_DROP),
        "schema-2": lambda: payload(schema=2),
        "space-spec-missing": lambda: payload(space_spec=_DROP),
        "space-spec-bad": lambda: payload(space_spec=json.dumps({"name": "x", "layers": 5})),
        "space-id-mismatch": lambda: payload(space_id="0123456789ab"),
        "other-space": lambda: payload(
            space_spec=json.dumps(load_space("proxyless-mobile").to_dict()),
            space_id=load_space("proxyless-mobile").id,
            target_spec=json.dumps(load_space("proxyless-mobile").to_dict()),
            target_id=load_space("proxyless-mobile").id),
        "malicious-pickle": evil,
        "random-bytes": lambda: bytes(range(256)) * 16,
        "truncated": lambda: payload()[:200],
        "empty": lambda: b"",
    }


class _Drop:
    pass


_DROP = _Drop()


def _checkpoint_cases() -> list[Case]:
    acc = json.dumps(_acc_base())
    cases = []
    for name, make in _checkpoint_payloads().items():
        cases.append(Case("checkpoint", f"{name}@validate-table", [
            "validate-table", "--table", "{d}/acc.json", "--checkpoint", "{d}/supernet.pt",
            "--data", "digits", "--samples", "2"], {"acc.json": acc},
            setup=lambda d, make=make: (d / "supernet.pt").write_bytes(make())))
        cases.append(Case("checkpoint", f"{name}@train-resume", [
            "train", "--space", "tiny-32", "--data", "digits", "--out", "{d}/run", "--epochs", "1"],
            setup=lambda d, make=make: ((d / "run").mkdir(),
                                        (d / "run" / "supernet.pt").write_bytes(make()))))
    return cases


# ----------------------------------------------------------- output paths
def _output_cases() -> list[Case]:
    acc = json.dumps(_acc_base())
    lut = str(LUTS / "proxylessnas_pixel1_mobile.yaml")
    writers = {
        "arch-sample": ["arch", "sample", "--space", "tiny-32", "--out", "OUT"],
        "arch-export": ["arch", "export", ARCH, "--out", "OUT"],
        "search-out": ["search", "--table", str(DEVICE), "--accuracy", "{d}/acc.json",
                       "--budget-ms", "5", "--out", "OUT"],
        "search-frontier": ["search", "--table", str(DEVICE), "--accuracy", "{d}/acc.json",
                            "--budget-ms", "5", "--frontier", "OUT"],
        "tables-import": ["tables", "import", lut, "--format", "proxylessnas", "--out", "OUT"],
        "space-export": ["space", "export", "tiny-32", "--out", "OUT"],
        "blocks-export": ["blocks", "export", "--space", "tiny-32", "--out", "OUT"],
        "profile": ["profile", "--space", "tiny-32", "--backend", "onnxruntime", "--quick",
                    "--out", "OUT"],
    }
    suffix = {"arch-export": ".onnx", "space-export": ".json", "blocks-export": "",
              "tables-import": ".json"}
    cases = []
    for name, argv in writers.items():
        ext = suffix.get(name, ".json")
        for kind, target, setup in (
                ("existing-file", "{d}/existing" + (ext or ".d"), "file"),
                ("parent-is-a-file", "{d}/afile/out" + ext, "parent-file"),
                ("read-only-filesystem", "/proc/hwnas-corpus/out" + ext, None),
                ("existing-folder", "{d}/folder", "folder")):
            if name == "blocks-export" and kind == "existing-file":
                continue
            if kind == "existing-folder" and name == "blocks-export":
                target = "{d}/folder"
            files = {"acc.json": acc}
            if setup == "file":
                files[target.replace("{d}/", "")] = "precious\n"
            elif setup == "parent-file":
                files["afile"] = "precious\n"

            def mk(d: Path, setup=setup) -> None:
                if setup == "folder":
                    (d / "folder").mkdir()
                    (d / "folder" / "keep.txt").write_text("precious\n")

            cases.append(Case("output-path", f"{name}@{kind}",
                              [a if a != "OUT" else target for a in argv], files, setup=mk))
    cases.append(Case("output-path", "train@parent-is-a-file", [
        "train", "--space", "tiny-32", "--data", "digits", "--out", "{d}/afile/run"],
        {"afile": "precious\n"}))
    cases.append(Case("output-path", "run@parent-is-a-file", [
        "run", "--quick", "--out", "{d}/afile/run"], {"afile": "precious\n"}))
    cases.append(Case("output-path", "train@read-only-filesystem", [
        "train", "--space", "tiny-32", "--data", "digits", "--out", "/proc/hwnas-corpus/run"]))
    return cases


# ------------------------------------------------------------- arguments
def _argument_cases() -> list[Case]:
    acc = {"acc.json": json.dumps(_acc_base())}
    search = ["search", "--table", str(DEVICE), "--accuracy", "{d}/acc.json"]
    out = []
    for name, extra in (("budget-inf", ["--budget-ms", "inf"]), ("budget-nan", ["--budget-ms", "nan"]),
                        ("budget-negative", ["--budget-ms", "-1"]),
                        ("budget-text", ["--budget-ms", "fast"]),
                        ("budget-1e400", ["--budget-ms", "1e400"]),
                        ("budget-impossible", ["--budget-ms", "0.000001"]),
                        ("budget-list-garbage", ["--budget-ms", "1,,x"]),
                        ("seed-negative-evolution", ["--budget-ms", "5", "--method", "evolution",
                                                     "--seed", "-1"])):
        out.append(Case("arguments", f"search-{name}", search + extra, dict(acc)))
    for name, extra in (("budget-inf", ["--budget-ms", "inf"]), ("budget-nan", ["--budget-ms", "nan"]),
                        ("budget-zero", ["--budget-ms", "0"]),
                        ("backend-unknown", ["--backend", "onnx"]),
                        ("precision-unknown", ["--precision", "int4"]),
                        ("train-device-unknown", ["--train-device", "tpu"])):
        out.append(Case("arguments", f"run-{name}", ["run", "--quick", "--out", "{d}/run"] + extra))
    out.append(Case("arguments", "predict-space-unknown", ["predict", "tiny-99:k3e3", "--table",
                                                           str(DEVICE)]))
    out.append(Case("arguments", "train-epochs-negative", [
        "train", "--space", "tiny-32", "--data", "digits", "--out", "{d}/run", "--epochs", "-1"]))
    out.append(Case("arguments", "profile-backend-unknown", [
        "profile", "--space", "tiny-32", "--backend", "tflite9", "--out", "{d}/t.json"]))
    return out


def cases() -> list[Case]:
    """Every case of the corpus, in a stable order."""
    from corpus_code import cases as code_cases  # files that run code, links, bounds

    return (_device_cases() + _foreign_cases() + _space_cases() + _accuracy_cases()
            + _arch_cases() + _data_cases() + _checkpoint_cases() + _output_cases()
            + _argument_cases() + code_cases())
