"""Search spaces: a fixed stem, fixed blocks and head, and per layer its candidate blocks.

A space is decoded from one plain mapping (the same form a user writes in JSON or YAML),
and encoded back to it by :meth:`SearchSpace.to_dict`; the built-in spaces are written in
that very form. Its ``id`` is a hash of its content (block keys), not of its name, so a
table or architecture made for one space can never be applied to a different one.

Layer form (one entry per searchable layer)::

    {"out": 24, "stride": 2, "choices": ["k3e3", "k3e6", ..., "skip"]}
    {"blocks": ["mbconv_i56x56x24_o24_k3_e3_s1_se0_relu6_r1", ...]}   # explicit keys

Stage form (expanded to layers; ``skip`` is offered on every layer but the first)::

    {"out": 24, "n": 4, "stride": 2, "choices": [...], "skip": true}
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hwnas_profilers.fileformat import echo

from .blocks import Block
from .errors import SpaceError, UserError


@dataclass(frozen=True)
class Layer:
    """One searchable layer: its candidates share input and output shapes."""

    candidates: tuple[Block, ...]

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(b.choice() for b in self.candidates)

    def block(self, choice: str) -> Block:
        for b in self.candidates:
            if b.choice() == choice:
                return b
        raise KeyError(choice)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """Input (height, width, channels)."""
        return self.candidates[0].in_shape

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return self.candidates[0].out_shape


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input: tuple[int, int, int]  # H, W, C
    classes: int
    stem: Block
    fixed: tuple[Block, ...]
    layers: tuple[Layer, ...]
    head: Block

    # -------------------------------------------------------------- identity
    @property
    def id(self) -> str:
        """Stable content id: sha256 over every block key, first 12 hex digits."""
        content = {
            "stem": self.stem.key(),
            "fixed": [b.key() for b in self.fixed],
            "layers": [[b.key() for b in layer.candidates] for layer in self.layers],
            "head": self.head.key(),
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return digest[:12]

    def __len__(self) -> int:
        return len(self.layers)

    # ------------------------------------------------------------ structure
    def fixed_blocks(self) -> tuple[Block, ...]:
        """Blocks every architecture contains: stem, fixed blocks, head."""
        return (self.stem, *self.fixed, self.head)

    def unique_blocks(self) -> list[Block]:
        """Every distinct block of the space (fixed parts and all candidates), sorted by key."""
        seen: dict[str, Block] = {}
        for b in self.fixed_blocks():
            seen.setdefault(b.key(), b)
        for layer in self.layers:
            for b in layer.candidates:
                seen.setdefault(b.key(), b)
        return [seen[k] for k in sorted(seen)]

    def size(self) -> int:
        """The number of architectures: the product of the layers' choice counts."""
        n = 1
        for layer in self.layers:
            n *= len(layer.candidates)
        return n

    def sample(self, seed: int | None = None) -> tuple[str, ...]:
        """Uniformly random choices, one per layer (deterministic for a seed)."""
        rng = random.Random(seed)
        return tuple(rng.choice(layer.choices) for layer in self.layers)

    def shrink(self, keep: Sequence[Sequence[str]], name: str | None = None) -> "SearchSpace":
        """A space with only the given choices per layer (each layer keeps at least one)."""
        if len(keep) != len(self.layers):
            raise SpaceError(f"shrink needs {len(self.layers)} layers of choices, got {len(keep)}")
        layers = []
        for i, (layer, choices) in enumerate(zip(self.layers, keep)):
            if not choices:
                raise SpaceError(f"layer {i}: shrinking must keep at least one candidate")
            try:
                layers.append(Layer(tuple(layer.block(c) for c in choices)))
            except KeyError as exc:
                raise SpaceError(f"layer {i}: {exc.args[0]!r} is not a candidate") from None
        return SearchSpace(name or f"{self.name}-shrunk", self.input, self.classes, self.stem,
                           self.fixed, tuple(layers), self.head)

    # -------------------------------------------------------------- encoding
    def to_dict(self) -> dict[str, Any]:
        """The plain form :func:`space_from_dict` reads; round-trips to the same id."""
        def layer_entry(layer: Layer) -> dict[str, Any]:
            first = layer.candidates[0]
            stride = 1 if first.op == "skip" else first.stride
            return {"out": first.cout, "stride": stride, "choices": list(layer.choices)}

        return {
            "name": self.name,
            "input": list(self.input),
            "classes": self.classes,
            "act": self.stem.act,
            "stem": {"out": self.stem.cout, "kernel": self.stem.kernel, "stride": self.stem.stride},
            "fixed": [{"out": b.cout, "stride": b.stride, "choice": b.choice()} for b in self.fixed],
            "layers": [layer_entry(layer) for layer in self.layers],
            "head": {"out": self.head.cout},
        }

    def describe(self) -> dict[str, Any]:
        """Human/JSON summary: per searchable layer, its shapes and candidates."""
        return {
            "name": self.name, "id": self.id, "input": list(self.input),
            "classes": self.classes, "num_layers": len(self.layers), "size": self.size(),
            "stem": self.stem.key(), "fixed": [b.key() for b in self.fixed],
            "head": self.head.key(),
            "layers": [{"index": i, "in": list(layer.in_shape), "out": list(layer.out_shape),
                        "choices": list(layer.choices)} for i, layer in enumerate(self.layers)],
        }


# ---------------------------------------------------------------- decoding
# Bounds of a space file, checked before anything is expanded or allocated: the largest
# built-in space has 21 layers, 12 candidates, 1280 channels and a 224x224 input.
LIMITS = {"n": 64, "layers": 256, "choices": 64, "out": 16384, "classes": 100_000,
          "kernel": 15, "stride": 8, "input": 4096}


def _int(spec: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    val = spec.get(key, default)
    if val is None:
        raise SpaceError(f"{where}: missing {key!r}")
    hi = LIMITS.get(key, 1 << 20)
    if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= hi:
        raise SpaceError(f"{where}: {key!r} must be an integer from 1 to {hi}, got {echo(val)}")
    return val


def _strings(spec: Mapping[str, Any], key: str, where: str) -> list[str]:
    val = spec.get(key, [])
    if not isinstance(val, list) or not all(isinstance(v, str) and len(v) <= 200 for v in val):
        raise SpaceError(f"{where}: {key!r} must be a list of names, got {echo(val)}")
    if len(val) > LIMITS["choices"]:
        raise SpaceError(f"{where}: {len(val)} {key} (at most {LIMITS['choices']})")
    return list(val)


def _check_keys(spec: Any, allowed: Iterable[str], where: str) -> None:
    if not isinstance(spec, Mapping):
        raise SpaceError(f"{where}: expected a mapping, got {type(spec).__name__}")
    unknown = sorted(map(str, set(spec) - set(allowed)))
    if unknown:
        raise SpaceError(f"{where}: unknown field(s) {echo(', '.join(map(str, unknown)))}")


def _expand_stages(stages: Any) -> list[dict[str, Any]]:
    if not isinstance(stages, list) or not stages:
        raise SpaceError("space: 'stages' must be a non-empty list")
    if len(stages) > LIMITS["layers"]:
        raise SpaceError(f"space: {len(stages)} stages (at most {LIMITS['layers']} layers)")
    layers: list[dict[str, Any]] = []
    for s, st in enumerate(stages):
        where = f"stage {s}"
        _check_keys(st, ("out", "n", "stride", "choices", "skip"), where)
        n = _int(st, "n", where, 1)
        if len(layers) + n > LIMITS["layers"]:
            raise SpaceError(f"space: stages expand to more than {LIMITS['layers']} layers")
        base = _strings(st, "choices", where)
        for j in range(n):
            choices = list(base)
            if st.get("skip", False) and j > 0:
                choices.append("skip")
            layers.append({"out": st.get("out"), "stride": st.get("stride", 1) if j == 0 else 1,
                           "choices": choices})
    return layers


def space_from_dict(spec: Mapping[str, Any]) -> SearchSpace:
    """Decode and validate a space; errors name the offending layer."""
    _check_keys(spec, ("name", "input", "classes", "act", "stem", "fixed", "layers", "stages",
                       "head", "description"), "space")
    name = str(spec.get("name", "custom"))
    if not isinstance(spec.get("name", "custom"), str) or len(name) > 200:
        raise SpaceError(f"space: 'name' must be a short string, got {echo(spec.get('name'))}")
    inp = spec.get("input")
    if (not isinstance(inp, (list, tuple)) or len(inp) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool)
                       and 0 < v <= LIMITS["input"] for v in inp)):
        raise SpaceError(f"space {name}: 'input' must be [H, W, C] integers from 1 to "
                         f"{LIMITS['input']}, got {echo(inp)}")
    classes = _int(spec, "classes", f"space {name}")
    act = str(spec.get("act", "relu6"))
    if ("layers" in spec) == ("stages" in spec):
        raise SpaceError(f"space {name}: give exactly one of 'layers' or 'stages'")
    raw_layers = spec["layers"] if "layers" in spec else _expand_stages(spec["stages"])
    if not isinstance(raw_layers, list) or not raw_layers:
        raise SpaceError(f"space {name}: 'layers' must be a non-empty list")
    if len(raw_layers) > LIMITS["layers"]:
        raise SpaceError(f"space {name}: {len(raw_layers)} layers (at most {LIMITS['layers']})")
    if not isinstance(spec.get("fixed", []) or [], list) or len(spec.get("fixed") or []) > 16:
        raise SpaceError(f"space {name}: 'fixed' must be a list of at most 16 blocks")
    try:
        st = spec.get("stem", {})
        _check_keys(st, ("out", "kernel", "stride"), "stem")
        stem = Block("stem", inp[0], inp[1], inp[2], _int(st, "out", "stem"),
                     kernel=_int(st, "kernel", "stem", 3), stride=_int(st, "stride", "stem", 2),
                     act=act)
        h, w, c = stem.out_shape
        fixed = []
        for i, fx in enumerate(spec.get("fixed", []) or []):
            _check_keys(fx, ("out", "stride", "choice"), f"fixed block {i}")
            b = Block.from_choice(str(fx.get("choice", "")), h, w, c, _int(fx, "out", f"fixed {i}"),
                                  _int(fx, "stride", f"fixed {i}", 1), act)
            fixed.append(b)
            h, w, c = b.out_shape
    except UserError as exc:
        raise SpaceError(f"space {name}: {exc}") from None
    layers = []
    for i, ls in enumerate(raw_layers):
        where = f"space {name}: layer {i}"
        _check_keys(ls, ("out", "stride", "choices", "blocks"), where)
        try:
            if "blocks" in ls:
                cands = tuple(Block.from_key(k) for k in _strings(ls, "blocks", where))
            else:
                out, stride = _int(ls, "out", where), _int(ls, "stride", where, 1)
                cands = tuple(Block.from_choice(ch, h, w, c, out, stride, act)
                              for ch in _strings(ls, "choices", where))
        except UserError as exc:
            raise SpaceError(f"{where}: {exc}") from None
        if not cands:
            raise SpaceError(f"{where}: no candidates")
        for b in cands:
            if b.op not in ("mbconv", "skip"):
                raise SpaceError(f"{where}: {b.key()} is a {b.op}, not a searchable block")
            if b.in_shape != (h, w, c):
                raise SpaceError(f"{where}: candidate {b.key()} expects input {b.in_shape} "
                                 f"but the previous layer outputs {(h, w, c)}")
            if b.out_shape != cands[0].out_shape:
                raise SpaceError(f"{where}: candidates disagree on output shape "
                                 f"({cands[0].key()} vs {b.key()})")
        choices = [b.choice() for b in cands]
        if len(set(choices)) != len(choices):
            raise SpaceError(f"{where}: duplicate candidates {choices}")
        layers.append(Layer(cands))
        h, w, c = cands[0].out_shape
    hd = spec.get("head", {})
    _check_keys(hd, ("out",), "head")
    head = Block("head", h, w, c, _int(hd, "out", f"space {name}: head"), classes=classes, act=act)
    return SearchSpace(name, tuple(inp), classes, stem, tuple(fixed), tuple(layers), head)


# ---------------------------------------------------------------- built-ins
_MB = [f"k{k}e{e}" for k in (3, 5, 7) for e in (3, 6)]
_MB_SE = [f"k{k}e{e}{se}" for k in (3, 5, 7) for e in (3, 6) for se in ("", "se")]

BUILTIN_SPECS: dict[str, dict[str, Any]] = {
    "proxyless-mobile": {
        "name": "proxyless-mobile", "input": [224, 224, 3], "classes": 1000, "act": "relu6",
        "description": "ProxylessNAS mobile space: 21 searchable MBConv layers, k{3,5,7} x e{3,6} + skip",
        "stem": {"out": 32, "kernel": 3, "stride": 2},
        "fixed": [{"out": 16, "stride": 1, "choice": "k3e1"}],
        "stages": [
            {"out": 24, "n": 4, "stride": 2, "choices": _MB, "skip": True},
            {"out": 40, "n": 4, "stride": 2, "choices": _MB, "skip": True},
            {"out": 80, "n": 4, "stride": 2, "choices": _MB, "skip": True},
            {"out": 96, "n": 4, "stride": 1, "choices": _MB, "skip": True},
            {"out": 192, "n": 4, "stride": 2, "choices": _MB, "skip": True},
            {"out": 320, "n": 1, "stride": 1, "choices": _MB, "skip": True},
        ],
        "head": {"out": 1280},
    },
    "ponas-224": {
        "name": "ponas-224", "input": [224, 224, 3], "classes": 1000, "act": "relu6",
        "description": "PONAS space: 19 searchable MBConv layers, k{3,5,7} x e{3,6} x SE{off,on}",
        "stem": {"out": 32, "kernel": 3, "stride": 2},
        "fixed": [{"out": 16, "stride": 1, "choice": "k3e1"}],
        "stages": [
            {"out": 32, "n": 2, "stride": 2, "choices": _MB_SE},
            {"out": 40, "n": 4, "stride": 2, "choices": _MB_SE},
            {"out": 80, "n": 4, "stride": 2, "choices": _MB_SE},
            {"out": 96, "n": 4, "stride": 1, "choices": _MB_SE},
            {"out": 192, "n": 4, "stride": 2, "choices": _MB_SE},
            {"out": 320, "n": 1, "stride": 1, "choices": _MB_SE},
        ],
        "head": {"out": 1280},
    },
    "tiny-32": {
        "name": "tiny-32", "input": [32, 32, 3], "classes": 10, "act": "relu6",
        "description": "proxyless family at 32x32 with few channels: trains on 2 CPU cores in minutes",
        "stem": {"out": 16, "kernel": 3, "stride": 1},
        "fixed": [{"out": 8, "stride": 1, "choice": "k3e1"}],
        "stages": [
            {"out": 16, "n": 2, "stride": 2, "choices": _MB, "skip": True},
            {"out": 24, "n": 2, "stride": 2, "choices": _MB, "skip": True},
            {"out": 32, "n": 2, "stride": 1, "choices": _MB, "skip": True},
        ],
        "head": {"out": 128},
    },
}


def builtin_spaces() -> list[str]:
    """Names of the spaces shipped with hwnas."""
    return sorted(BUILTIN_SPECS)


def load_space(ref: "str | Path | SearchSpace") -> SearchSpace:
    """A built-in space by name, or a space file (JSON or YAML) by path."""
    if isinstance(ref, SearchSpace):
        return ref
    ref_s = str(ref)
    if ref_s in BUILTIN_SPECS:
        return space_from_dict(BUILTIN_SPECS[ref_s])
    path = Path(ref_s)
    if not path.suffix.lower() in (".json", ".yaml", ".yml"):
        raise SpaceError(f"unknown space {ref_s!r}; built-in spaces: {', '.join(builtin_spaces())}"
                         " (or give a .json/.yaml space file)")
    if not path.is_file():
        raise SpaceError(f"space file {ref_s} does not exist")
    from .fileio import read_json, read_yaml

    try:
        spec = (read_json(path, "space file") if path.suffix.lower() == ".json"
                else read_yaml(path, "space file"))
    except UserError as exc:
        raise SpaceError(str(exc)) from None
    if not isinstance(spec, Mapping):
        raise SpaceError(f"space file {ref_s} must hold a mapping at top level")
    return space_from_dict(spec)


def save_space(space: SearchSpace, path: "str | Path") -> Path:
    from .fileio import write_json_atomic

    return write_json_atomic(path, space.to_dict())


def find_space_by_id(space_id: str, extra: Sequence[SearchSpace] = ()) -> SearchSpace | None:
    """The built-in (or given) space whose content id is ``space_id``."""
    for sp in list(extra) + [load_space(n) for n in builtin_spaces()]:
        if sp.id == space_id:
            return sp
    return None
