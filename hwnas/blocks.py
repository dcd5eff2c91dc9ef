"""Block specs: every parameter that changes a block's latency, and its canonical key.

The canonical key is the join key of every table (device tables, bundles, manifests).
It is encoded by :meth:`Block.key` and decoded by :meth:`Block.from_key`, and nowhere
else. Keys look like timm's block strings::

    stem_i224x224x3_o32_k3_s2_relu6
    mbconv_i112x112x16_o24_k5_e6_s2_se0_relu6_r0
    skip_i56x56x24_o24
    head_i7x7x320_o1280_n1000_relu6

Costs (MACs, parameters, activation memory) are pure functions of the spec, so the solver
can use them as extra additive limits without importing torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hwnas_profilers.fileformat import echo

from .errors import UserError

OPS = ("stem", "mbconv", "skip", "head")
ACTIVATIONS = ("relu", "relu6", "hswish", "swish")
SE_REDUCTION = 4  # squeeze-excite bottleneck = mid channels // 4, as in MobileNetV3

# Which fields are part of the key for each op, in key order.
_OP_FIELDS = {
    "stem": ("i", "o", "k", "s", "act"),
    "mbconv": ("i", "o", "k", "e", "s", "se", "act", "r"),
    "skip": ("i", "o"),
    "head": ("i", "o", "n", "act"),
}

_TOKEN = re.compile(r"^(?:i(?P<i>\d+x\d+x\d+)|o(?P<o>\d+)|k(?P<k>\d+)|e(?P<e>\d+)|s(?P<s>\d+)"
                    r"|se(?P<se>[01])|r(?P<r>[01])|n(?P<n>\d+)|(?P<act>relu6|relu|hswish|swish))$")
_CHOICE = re.compile(r"^k(?P<k>\d+)e(?P<e>\d+)(?P<se>se)?$")


@dataclass(frozen=True, order=True)
class Block:
    """One candidate block with its input shape. Immutable; hashable; ordered by fields."""

    op: str
    h: int
    w: int
    cin: int
    cout: int
    kernel: int = 1
    expand: int = 1
    stride: int = 1
    se: bool = False
    act: str = "relu6"
    residual: bool = False
    classes: int = 0

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise UserError(f"unknown block op {self.op!r}; known: {', '.join(OPS)}")
        dims = (self.h, self.w, self.cin, self.cout, self.kernel, self.expand, self.stride,
                self.classes)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in dims):
            raise UserError(f"block {self.op}: shapes, kernel, expansion, stride and classes "
                            "must be integers")
        if min(self.h, self.w, self.cin, self.cout) < 1:
            raise UserError(f"block {self.op}: shapes must be positive, got "
                            f"{self.h}x{self.w}x{self.cin} -> {self.cout}")
        # bounds far above any real network, so a hostile file cannot ask for a tensor of
        # terabytes (or a float overflow in the FLOP count) before anything checks it
        if (max(self.h, self.w) > 16384 or max(self.cin, self.cout) > 65536
                or self.kernel > 31 or self.expand > 64 or self.stride > 64
                or self.classes > 1_000_000):
            raise UserError(f"block {self.op}: a dimension is out of range (at most 16384 "
                            "pixels, 65536 channels, kernel 31, expansion 64, stride 64, "
                            "1e6 classes)")
        if self.act not in ACTIVATIONS:
            raise UserError(f"unknown activation {self.act!r}; known: {', '.join(ACTIVATIONS)}")
        if self.op == "skip" and (self.cin != self.cout or self.stride != 1):
            raise UserError(f"skip block needs equal channels and stride 1, got "
                            f"{self.cin}->{self.cout} stride {self.stride}")
        if self.op == "mbconv":
            if self.kernel % 2 == 0 or self.kernel < 1:
                raise UserError(f"mbconv kernel must be odd, got {self.kernel}")
            if self.stride not in (1, 2):
                raise UserError(f"mbconv stride must be 1 or 2, got {self.stride}")
            if self.expand < 1:
                raise UserError(f"mbconv expansion must be >= 1, got {self.expand}")
            if self.residual and (self.stride != 1 or self.cin != self.cout):
                raise UserError("mbconv residual needs stride 1 and equal channels")
        if self.op == "head" and self.classes < 1:
            raise UserError("head block needs a class count >= 1")

    # ----------------------------------------------------------------- shapes
    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width."""
        if self.op == "head":
            return (1, 1)
        return (math.ceil(self.h / self.stride), math.ceil(self.w / self.stride))

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """Input (height, width, channels)."""
        return (self.h, self.w, self.cin)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the output; a head outputs (1, 1, classes)."""
        if self.op == "head":
            return (1, 1, self.classes)
        return (*self.out_hw, self.cout)

    @property
    def mid(self) -> int:
        """Channels of the expanded middle (input channels times the expansion)."""
        return self.cin * self.expand

    # -------------------------------------------------------------- encoding
    def key(self) -> str:
        """The canonical key; inverse of :meth:`from_key`."""
        values = {
            "i": f"i{self.h}x{self.w}x{self.cin}", "o": f"o{self.cout}", "k": f"k{self.kernel}",
            "e": f"e{self.expand}", "s": f"s{self.stride}", "se": f"se{int(self.se)}",
            "act": self.act, "r": f"r{int(self.residual)}", "n": f"n{self.classes}",
        }
        return "_".join([self.op] + [values[f] for f in _OP_FIELDS[self.op]])

    @classmethod
    def from_key(cls, key: str) -> "Block":
        """The block a canonical key names (the inverse of ``key()``)."""
        if not isinstance(key, str) or len(key) > 300:
            raise UserError(f"a block key must be a short string, got {echo(key)}")
        parts = key.strip().split("_")
        op = parts[0]
        if op not in _OP_FIELDS:
            raise UserError(f"unknown block key {echo(key)}: op {echo(op)} is not one of "
                            f"{', '.join(OPS)}")
        fields: dict[str, str] = {}
        for tok in parts[1:]:
            m = _TOKEN.match(tok)
            if not m:
                raise UserError(f"malformed block key {echo(key)}: cannot read {echo(tok)}")
            name, val = next((n, v) for n, v in m.groupdict().items() if v is not None)
            if name in fields:
                raise UserError(f"malformed block key {key!r}: {name!r} given twice")
            fields[name] = val
        missing = [f for f in _OP_FIELDS[op] if f not in fields]
        extra = [f for f in fields if f not in _OP_FIELDS[op]]
        if missing or extra:
            raise UserError(f"malformed block key {key!r}: missing {missing} unexpected {extra}")
        h, w, c = (int(v) for v in str(fields["i"]).split("x"))
        kw: dict[str, object] = {"op": op, "h": h, "w": w, "cin": c, "cout": int(fields["o"])}
        for f, attr, conv in (("k", "kernel", int), ("e", "expand", int), ("s", "stride", int),
                              ("n", "classes", int), ("act", "act", str)):
            if f in fields:
                kw[attr] = conv(fields[f])
        if "se" in fields:
            kw["se"] = fields["se"] == "1"
        if "r" in fields:
            kw["residual"] = fields["r"] == "1"
        if op == "skip":
            kw["residual"] = True
        block = cls(**kw)  # type: ignore[arg-type]
        if block.key() != key:
            raise UserError(f"non-canonical block key {key!r}; canonical form is {block.key()!r}")
        return block

    # ------------------------------------------------------ compact notation
    def choice(self) -> str:
        """The compact per-layer notation (``k3e6``, ``k5e3se``, ``skip``)."""
        if self.op == "skip":
            return "skip"
        if self.op != "mbconv":
            raise UserError(f"{self.op} blocks have no per-layer choice notation")
        return f"k{self.kernel}e{self.expand}{'se' if self.se else ''}"

    @staticmethod
    def from_choice(choice: str, h: int, w: int, cin: int, cout: int, stride: int,
                    act: str = "relu6") -> "Block":
        """Decode the compact notation at a given input shape (residual when shapes allow)."""
        choice = str(choice).strip()
        if choice == "skip":
            if stride != 1 or cin != cout:
                raise UserError("skip is only allowed where stride is 1 and channels match")
            return Block("skip", h, w, cin, cout, residual=True)
        m = _CHOICE.match(choice)
        if not m:
            raise UserError(f"unknown choice {choice!r}; expected e.g. 'k3e6', 'k5e3se' or 'skip'")
        return Block("mbconv", h, w, cin, cout, kernel=int(m["k"]), expand=int(m["e"]),
                     stride=stride, se=bool(m["se"]), act=act,
                     residual=(stride == 1 and cin == cout))

    # ------------------------------------------------------------------ costs
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass at batch 1 (convs, SE, linear)."""
        ho, wo = self.out_hw
        if self.op == "skip":
            return 0
        if self.op == "stem":
            return ho * wo * self.cout * self.cin * self.kernel * self.kernel
        if self.op == "head":
            return self.h * self.w * self.cin * self.cout + self.cout * self.classes
        mid = self.mid
        total = 0
        if self.expand != 1:
            total += self.h * self.w * self.cin * mid
        total += ho * wo * mid * self.kernel * self.kernel
        if self.se:
            red = max(1, mid // SE_REDUCTION)
            total += 2 * mid * red
        total += ho * wo * mid * self.cout
        return total

    def params(self) -> int:
        """Trainable parameters (conv weights, batch-norm affine, SE and linear biases)."""
        if self.op == "skip":
            return 0
        if self.op == "stem":
            return self.cin * self.cout * self.kernel ** 2 + 2 * self.cout
        if self.op == "head":
            return self.cin * self.cout + 2 * self.cout + self.cout * self.classes + self.classes
        mid = self.mid
        total = 0
        if self.expand != 1:
            total += self.cin * mid + 2 * mid
        total += mid * self.kernel ** 2 + 2 * mid
        if self.se:
            red = max(1, mid // SE_REDUCTION)
            total += mid * red + red + red * mid + mid
        total += mid * self.cout + 2 * self.cout
        return total

    def activation_elems(self) -> int:
        """Peak live activation elements while the block runs (input + largest tensor pair)."""
        ho, wo = self.out_hw
        inp = self.h * self.w * self.cin
        if self.op == "skip":
            return inp
        if self.op in ("stem",):
            return inp + ho * wo * self.cout
        if self.op == "head":
            return inp + self.h * self.w * self.cout
        mid = self.mid
        expanded = self.h * self.w * mid if self.expand != 1 else inp
        dw = ho * wo * mid
        out = ho * wo * self.cout
        # the block input stays alive for the residual add
        return max(inp + expanded, (inp if self.residual else 0) + expanded + dw,
                   (inp if self.residual else 0) + dw + out)
