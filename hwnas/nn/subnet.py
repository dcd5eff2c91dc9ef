"""A standalone sub-network for one architecture of a space."""

from __future__ import annotations

import torch
from torch import nn

from ..arch import Architecture
from ..spaces import SearchSpace
from .layers import build_block


class SubNet(nn.Module):
    """Stem, fixed blocks, the chosen block of every layer, head. Input is NCHW."""

    def __init__(self, space: SearchSpace, arch: Architecture) -> None:
        super().__init__()
        blocks = arch.blocks(space)
        self.space_id = space.id
        self.choices = arch.choices
        self.input_shape = (space.input[2], space.input[0], space.input[1])
        self.stem = build_block(blocks[0])
        self.fixed = nn.Sequential(*[build_block(b) for b in space.fixed])
        self.layers = nn.ModuleList(build_block(b) for b in blocks[1 + len(space.fixed):-1])
        self.head = build_block(blocks[-1])
        self._macs = arch.total_macs(space)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fixed(self.stem(x))
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def macs(self) -> int:
        """Multiply-accumulates at batch 1 (what NAS papers call "FLOPs")."""
        return self._macs

    def params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_subnet(space: SearchSpace, arch: Architecture, seed: int | None = 0) -> SubNet:
    """A freshly initialised sub-network (deterministic weights for a seed)."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SubNet(space, arch).eval()
    return SubNet(space, arch).eval()
