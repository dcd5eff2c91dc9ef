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
    """Stem, fixed blocks, per layer a ``ModuleDict`` of all candidates, head.

    ``unshared``: PWSNAS's second strategy, less weight sharing by more parameters. Every
    candidate of layer ``i >= 1`` holds one copy of its weights per candidate of layer
    ``i - 1`` (``ModuleDict`` key ``"<previous>><choice>"``), and a path uses the copy its
    own previous choice selects; so the paths that share a block's weights are only those
    that agree on the block before it. Meant after shrinking, where a layer has few
    survivors and the copies stay affordable (see :func:`unshare_supernet`)."""

    def __init__(self, space: SearchSpace, unshared: bool = False) -> None:
        super().__init__()
        self.space = space
        self.space_id = space.id
        self.unshared = unshared
        self.stem = build_block(space.stem)
        self.fixed = nn.Sequential(*[build_block(b) for b in space.fixed])
        self.layers = nn.ModuleList(
            nn.ModuleDict({_copy_key(i, prev, b.choice()): build_block(b)
                           for prev in (space.layers[i - 1].choices
                                        if unshared and i > 0 else (None,))
                           for b in layer.candidates})
            for i, layer in enumerate(space.layers))
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
        for i, (c, layer) in enumerate(zip(choices, self.space.layers)):
            if c not in layer.choices:
                raise ArchitectureError(f"layer {i}: {c!r} is not a candidate; candidates: "
                                        f"{', '.join(layer.choices)}")

    def key(self, i: int, choices: Sequence[str]) -> str:
        """The ``ModuleDict`` key of layer ``i``'s block on the path ``choices``."""
        return _copy_key(i, choices[i - 1] if self.unshared and i > 0 else None, choices[i])

    def block(self, i: int, choices: Sequence[str]) -> nn.Module:
        """Layer ``i``'s module on the path ``choices`` (its copy, when unshared)."""
        return self.layers[i][self.key(i, choices)]

    def forward(self, x: torch.Tensor, choices: Sequence[str]) -> torch.Tensor:
        x = self.fixed(self.stem(x))
        for i in range(len(self.layers)):
            x = self.block(i, choices)(x)
        return self.head(x)


def _copy_key(i: int, prev: str | None, choice: str) -> str:
    return choice if prev is None else f"{prev}>{choice}"


def unshare_supernet(supernet: Supernet) -> Supernet:
    """The unshared supernet (:class:`Supernet` ``unshared=True``) of ``supernet``'s space,
    every copy starting from the shared weights it replaces: the paths' outputs are
    unchanged until training lets the copies part."""
    with torch.random.fork_rng(devices=[]):
        net = Supernet(supernet.space, unshared=True)
    src = supernet.state_dict()
    net.load_state_dict({k: src[shared_key(k)].clone() for k in net.state_dict()}, strict=True)
    return net.to(next(supernet.parameters()).device).train(supernet.training)


def shared_key(key: str) -> str:
    """The shared supernet's state-dict key of an unshared one's (``layers.i.p>c.rest`` ->
    ``layers.i.c.rest``)."""
    if key.startswith("layers."):
        _, idx, mod, rest = key.split(".", 3)
        return f"layers.{idx}.{mod.split('>')[-1]}.{rest}"
    return key


def sample_path(space: SearchSpace, rng: random.Random,
                fixed: Sequence[str | None] | None = None) -> tuple[str, ...]:
    """Uniform choice per layer; ``fixed[i]`` (when not None) pins layer ``i``."""
    out = []
    for i, layer in enumerate(space.layers):
        pin = fixed[i] if fixed is not None and i < len(fixed) else None
        out.append(pin if pin is not None else rng.choice(layer.choices))
    return tuple(out)


def subnet_key(key: str, supernet: Supernet, choices: Sequence[str]) -> str:
    """The supernet state-dict key of a sub-network key (``layers.i.rest`` gains the
    block's key in ``supernet``: the choice, and when unshared the previous choice too)."""
    if key.startswith("layers."):
        _, idx, rest = key.split(".", 2)
        return f"layers.{idx}.{supernet.key(int(idx), choices)}.{rest}"
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
    state = {k: src[subnet_key(k, supernet, arch.choices)].clone() for k in net.state_dict()}
    net.load_state_dict(state, strict=True)
    return net.train(supernet.training)
