"""EcoNAS proxies: reduced channels, resolution, training-sample ratio and epochs.

A proxy is set per run. It turns the target space into a cheaper *proxy space* with the
same layers and the same candidate names (so a table trained on it is a table for the
target space), and cuts the data and the epochs. ``full`` is the identity proxy.

Text form (CLI ``--proxy``)::

    full
    channels=0.5,resolution=16,samples=0.5,epochs=0.5
    c0.5,r16,s0.5,e0.5            # the same, short
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..errors import UserError
from ..spaces import SearchSpace, space_from_dict

_NAMES = {"c": "channels", "channels": "channels", "r": "resolution", "resolution": "resolution",
          "s": "samples", "samples": "samples", "e": "epochs", "epochs": "epochs"}
_SHORT = re.compile(r"^(?P<k>[crse])(?P<v>[0-9.]+)$")


@dataclass(frozen=True)
class Proxy:
    channels: float = 1.0         # width multiplier of every block
    resolution: int | None = None  # input side in pixels (None: the space's own)
    samples: float = 1.0          # share of the training split used
    epochs: float = 1.0           # share of the full setting's training epochs

    def __post_init__(self) -> None:
        for name in ("channels", "samples", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 < v <= 1.0:
                raise UserError(f"proxy {name} must be in (0, 1], got {v!r}")
        if self.resolution is not None and (not isinstance(self.resolution, int)
                                            or self.resolution < 4):
            raise UserError(f"proxy resolution must be an integer >= 4, got {self.resolution!r}")

    @property
    def is_full(self) -> bool:
        return self == Proxy()

    def tag(self) -> str:
        if self.is_full:
            return "full"
        parts = [f"c{self.channels:g}", f"r{self.resolution}" if self.resolution else "",
                 f"s{self.samples:g}", f"e{self.epochs:g}"]
        return ",".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Proxy":
        return cls(float(d.get("channels", 1.0)), d.get("resolution"),
                   float(d.get("samples", 1.0)), float(d.get("epochs", 1.0)))

    @classmethod
    def parse(cls, text: "str | None") -> "Proxy":
        if text is None or text.strip() in ("", "full"):
            return cls()
        fields: dict[str, Any] = {}
        for part in text.split(","):
            part = part.strip()
            if "=" in part:
                k, _, v = part.partition("=")
            else:
                m = _SHORT.match(part)
                if not m:
                    raise UserError(f"cannot read proxy setting {part!r}; use e.g. "
                                    "'channels=0.5,resolution=16,samples=0.5,epochs=0.5'")
                k, v = m["k"], m["v"]
            name = _NAMES.get(k.strip().lower())
            if name is None:
                raise UserError(f"unknown proxy setting {k!r}; known: channels, resolution, "
                                "samples, epochs")
            if name in fields:
                raise UserError(f"proxy setting {name!r} given twice")
            try:
                fields[name] = int(v) if name == "resolution" else float(v)
            except ValueError:
                raise UserError(f"proxy {name} must be a number, got {v!r}") from None
        return cls(**fields)

    def apply(self, space: SearchSpace) -> SearchSpace:
        """The proxy space: channels scaled (at least 4), input side replaced."""
        if self.channels == 1.0 and self.resolution in (None, space.input[0]):
            return space
        spec = space.to_dict()

        def scale(n: int) -> int:
            return max(4, int(round(n * self.channels)))

        spec["stem"]["out"] = scale(spec["stem"]["out"])
        for part in (*spec["fixed"], *spec["layers"]):
            part["out"] = scale(part["out"])
        spec["head"]["out"] = scale(spec["head"]["out"])
        if self.resolution:
            spec["input"] = [self.resolution, self.resolution, space.input[2]]
        spec["name"] = f"{space.name}@{self.tag()}"
        proxy_space = space_from_dict(spec)
        if [l.choices for l in proxy_space.layers] != [l.choices for l in space.layers]:
            raise UserError(f"proxy {self.tag()} changes the candidates of space {space.name}")
        return proxy_space
