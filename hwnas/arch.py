"""Architectures: a space id and one choice per searchable layer.

On disk an architecture is JSON (``Architecture.to_dict``); on the command line it may
also be written inline as ``SPACE:choice,choice,...`` (``tiny-32:k3e6,skip,k5e3,...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas_profilers.fileformat import KINDS, echo, number

from .blocks import Block
from .errors import ArchitectureError, UserError
from .fileio import check_header, read_json, write_json_atomic
from .spaces import SearchSpace, find_space_by_id, load_space

ARCH_KIND = "hwnas.architecture"
ARCH_SCHEMA = KINDS[ARCH_KIND]


@dataclass(frozen=True)
class Architecture:
    """One choice per layer of the space with id ``space_id``; figures are optional."""

    space_id: str
    choices: tuple[str, ...]
    space_name: str = ""
    latency_ms: float | None = None
    score: float | None = None
    macs: int | None = None  # multiply-accumulates at batch 1, whole network
    params: int | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, space: SearchSpace, choices: Sequence[str]) -> "Architecture":
        """An architecture of ``space`` with these choices, validated."""
        arch = cls(space.id, tuple(str(c) for c in choices), space.name)
        arch.validate(space)
        return arch

    def with_figures(self, **figures: Any) -> "Architecture":
        """The same choices with latency, score, MACs or params attached."""
        known = {"latency_ms", "score", "macs", "params"}
        bad = set(figures) - known
        if bad:
            raise TypeError(f"unknown figure(s) {sorted(bad)}")
        return replace(self, **figures)

    # ------------------------------------------------------------ validation
    def validate(self, space: SearchSpace) -> None:
        """Raise ``ArchitectureError`` unless the choices fit ``space`` layer by layer."""
        if self.space_id != space.id:
            raise ArchitectureError(
                f"architecture is for space id {self.space_id} ({self.space_name or 'unnamed'}), "
                f"not {space.name} (id {space.id})")
        if len(self.choices) != len(space.layers):
            raise ArchitectureError(f"architecture has {len(self.choices)} choices but space "
                                    f"{space.name} has {len(space.layers)} searchable layers")
        for i, (choice, layer) in enumerate(zip(self.choices, space.layers)):
            if choice not in layer.choices:
                hint = " (skip is not allowed on this layer)" if choice == "skip" else ""
                raise ArchitectureError(f"layer {i}: {echo(choice)} is not a candidate{hint}; "
                                        f"candidates: {', '.join(layer.choices)}")

    def blocks(self, space: SearchSpace) -> list[Block]:
        """Every block of the network in order: stem, fixed, chosen layers, head."""
        self.validate(space)
        chosen = [layer.block(c) for layer, c in zip(space.layers, self.choices)]
        return [space.stem, *space.fixed, *chosen, space.head]

    def total_macs(self, space: SearchSpace) -> int:
        """Multiply-accumulates of one forward pass at batch 1, whole network."""
        return sum(b.macs() for b in self.blocks(space))

    def total_params(self, space: SearchSpace) -> int:
        """Parameters of the whole network."""
        return sum(b.params() for b in self.blocks(space))

    def notation(self) -> str:
        """The inline form ``SPACE:c1,c2,...``."""
        return f"{self.space_name or self.space_id}:{','.join(self.choices)}"

    # -------------------------------------------------------------- encoding
    def to_dict(self) -> dict[str, Any]:
        """The JSON form (space id and name, choices, figures)."""
        d: dict[str, Any] = {"schema": ARCH_SCHEMA, "kind": ARCH_KIND,
                             "space": self.space_name, "space_id": self.space_id,
                             "choices": list(self.choices)}
        for k in ("latency_ms", "score", "macs", "params"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.extra:
            d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "architecture") -> "Architecture":
        """Read the JSON form, checked (bounded, typed)."""
        check_header(d, ARCH_KIND, ARCH_SCHEMA, source, "architecture", ArchitectureError)
        choices = d.get("choices")
        if (not isinstance(choices, list) or len(choices) > 1024
                or not all(isinstance(c, str) and len(c) <= 200 for c in choices)):
            raise ArchitectureError(f"{source}: 'choices' must be a list of short strings")
        for k in ("space_id", "space"):
            if not isinstance(d.get(k, ""), str) or len(d.get(k, "")) > 200:
                raise ArchitectureError(f"{source}: {k!r} must be a short string, got "
                                        f"{echo(d.get(k))}")
        figures: dict[str, Any] = {}
        for k, integer in (("latency_ms", False), ("score", False), ("macs", True),
                           ("params", True)):
            # files written before MACs were called MACs carry them as "flops"
            v = d.get(k) if k != "macs" or "macs" in d else d.get("flops")
            figures[k] = None if v is None else number(
                v, f"{source}: {k}", -1e15, 1e15, integer=integer, error=ArchitectureError)
        extra = d.get("extra", {})
        return cls(str(d.get("space_id", "")), tuple(choices), str(d.get("space", "")),
                   figures["latency_ms"], figures["score"], figures["macs"], figures["params"],
                   tuple(sorted(extra.items())) if isinstance(extra, Mapping) else ())

    def save(self, path: "str | Path") -> Path:
        """Write the architecture as JSON (atomically); returns the path."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, ref: "str | Path", space: "str | SearchSpace | None" = None
             ) -> "Architecture":
        """An architecture from a JSON file or ``SPACE:c1,c2,...``, validated against its
        space (``space``: needed only for a custom space). See :func:`load_architecture`
        for the space as well."""
        return load_architecture(ref, space)[1]

    def space(self) -> SearchSpace:
        """The built-in space this architecture belongs to (raises for a custom space)."""
        sp = find_space_by_id(self.space_id)
        if sp is None:
            raise ArchitectureError(f"space {self.space_name or self.space_id} is not built in; "
                                    "load it with hwnas.load_space(FILE)")
        return sp

    def export(self, path: "str | Path", supernet: "str | Path | None" = None,
               space: "SearchSpace | None" = None) -> Path:
        """The network as an ONNX file (opset 17, batch 1, NCHW float32): with ``supernet``
        (a checkpoint of ``hwnas train``/``run``) its inherited weights, else fresh weights
        (enough for latency). For a verified, measured engine use
        :func:`hwnas.engines.export_engine`. Needs the ``torch`` extra."""
        from .errors import require

        require("torch", "torch")
        from .nn.export import export_architecture

        sp = space if space is not None else self.space()
        self.validate(sp)
        model = None
        if supernet is not None:
            from .engines import _supernet_for
            from .train.checkpoint import load_checkpoint
            from .train.supernet import extract_subnet

            ck = load_checkpoint(supernet, sp)
            model = extract_subnet(_supernet_for(ck, sp, supernet), self).eval()
        return export_architecture(sp, self, path, model=model)


def load_architecture(ref: "str | Path", space: "str | SearchSpace | None" = None
                      ) -> tuple[SearchSpace, Architecture]:
    """Read ``ref`` (a JSON file or ``SPACE:c1,c2,...``) and resolve and validate its space.

    ``space`` (a name, file, or object) is needed only for architectures of custom spaces.
    """
    ref_s = str(ref)
    sp = load_space(space) if space is not None else None
    try:
        is_file = len(ref_s) < 4096 and Path(ref_s).is_file()
    except OSError:  # a name the OS refuses (too long, ...): then it is notation
        is_file = False
    if Path(ref_s).suffix.lower() == ".json" or is_file:
        try:
            raw = read_json(ref_s, "architecture file")
        except UserError as exc:  # the message names the file already
            raise ArchitectureError(str(exc)) from None
        arch = Architecture.from_dict(raw, f"architecture file {ref_s}")
        if sp is None:
            sp = find_space_by_id(arch.space_id)
            if sp is None:
                raise ArchitectureError(
                    f"{ref_s}: space {arch.space_name or arch.space_id} (id {arch.space_id}) is not "
                    "built in; pass its space file with --space")
    else:
        if ":" not in ref_s:
            raise ArchitectureError(f"{echo(ref_s)} is neither an architecture file nor "
                                    "SPACE:choice,choice,... notation")
        name, _, rest = ref_s.rpartition(":")
        if sp is None:
            sp = load_space(name)
        arch = Architecture(sp.id, tuple(c.strip() for c in rest.split(",") if c.strip()), sp.name)
    arch.validate(sp)
    if not arch.space_name:
        arch = replace(arch, space_name=sp.name)
    return sp, arch


def sample_architecture(space: SearchSpace, seed: int | None = None) -> Architecture:
    """A random architecture of ``space`` (reproducible with ``seed``)."""
    return Architecture.of(space, space.sample(seed))
