"""The weight-sharing supernet: every layer holds all its candidates, one path runs per step.

Module names line up with :class:`hwnas.nn.subnet.SubNet` (both are built with
:func:`hwnas.nn.layers.build_block`): the supernet's ``layers.<i>.<choice>.<rest>`` is the
sub-network's ``layers.<i>.<rest>``, so extracting a sub-network is a state-dict copy.
The path is an argument of ``forward``, never state kept on the module, so a result does
not depend on the order of earlier calls.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch
from torch import nn

from ..arch import Architecture
from ..errors import ArchitectureError
from ..nn.layers import MBConv, build_block
from ..nn.subnet import SubNet
from ..spaces import SearchSpace


class Supernet(nn.Module):
    """Stem, fixed blocks, per layer a ``ModuleDict`` of all candidates, head."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space
        self.space_id = space.id
        self.stem = build_block(space.stem)
        self.fixed = nn.Sequential(*[build_block(b) for b in space.fixed])
        self.layers = nn.ModuleList(
            nn.ModuleDict({b.choice(): build_block(b) for b in layer.candidates})
            for layer in space.layers)
        self.head = build_block(space.head)
        # Residual blocks start as identities (last BN scale zero): paths then differ little
        # at first, and single-path training leaves the chance-level plateau within a few
        # epochs instead of dozens (measured on tiny-32/digits). Extraction copies the
        # trained values, so sub-networks are unaffected.
        for layer in self.layers:
            for m in layer.values():
                if isinstance(m, MBConv) and m.residual:
                    nn.init.zeros_(m.project[1].weight)

    def check_path(self, choices: Sequence[str]) -> None:
        if len(choices) != len(self.layers):
            raise ArchitectureError(f"path has {len(choices)} choices, supernet has "
                                    f"{len(self.layers)} layers")
        for i, (c, layer) in enumerate(zip(choices, self.layers)):
            if c not in layer:
                raise ArchitectureError(f"layer {i}: {c!r} is not a candidate; candidates: "
                                        f"{', '.join(layer.keys())}")

    def forward(self, x: torch.Tensor, choices: Sequence[str]) -> torch.Tensor:
        x = self.fixed(self.stem(x))
        for layer, c in zip(self.layers, choices):
            x = layer[c](x)
        return self.head(x)


def sample_path(space: SearchSpace, rng: random.Random,
                fixed: Sequence[str | None] | None = None) -> tuple[str, ...]:
    """Uniform choice per layer; ``fixed[i]`` (when not None) pins layer ``i``."""
    out = []
    for i, layer in enumerate(space.layers):
        pin = fixed[i] if fixed is not None and i < len(fixed) else None
        out.append(pin if pin is not None else rng.choice(layer.choices))
    return tuple(out)


def subnet_key(key: str, choices: Sequence[str]) -> str:
    """The supernet state-dict key of a sub-network key (``layers.i.rest`` gains the choice)."""
    if key.startswith("layers."):
        _, idx, rest = key.split(".", 2)
        return f"layers.{idx}.{choices[int(idx)]}.{rest}"
    return key


def extract_subnet(supernet: Supernet, choices: "Sequence[str] | Architecture") -> SubNet:
    """A standalone :class:`SubNet` whose weights (and BN statistics) are the supernet's."""
    space = supernet.space
    if isinstance(choices, Architecture):
        arch = choices
        if arch.space_id != space.id:
            # a proxy-scaled supernet shares the layer choices of its target space
            arch = Architecture.of(space, arch.choices)
    else:
        arch = Architecture.of(space, tuple(choices))
    supernet.check_path(arch.choices)
    with torch.random.fork_rng(devices=[]):
        net = SubNet(space, arch)
    src = supernet.state_dict()
    state = {k: src[subnet_key(k, arch.choices)].clone() for k in net.state_dict()}
    net.load_state_dict(state, strict=True)
    return net.train(supernet.training)
