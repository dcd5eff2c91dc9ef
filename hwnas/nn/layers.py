"""One PyTorch module per block op, built from a :class:`~hwnas.blocks.Block` spec."""

from __future__ import annotations

import torch
from torch import nn

from ..blocks import SE_REDUCTION, Block


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "swish": nn.SiLU}[name]()


def conv_bn_act(cin: int, cout: int, k: int, s: int, act: str | None, groups: int = 1
                ) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(activation(act))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        red = max(1, channels // SE_REDUCTION)
        self.fc1 = nn.Conv2d(channels, red, 1)
        self.fc2 = nn.Conv2d(red, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.relu(self.fc1(s))
        return x * torch.sigmoid(self.fc2(s))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (if e > 1), kxk depthwise, optional SE, 1x1 project."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        mid = b.mid
        self.expand = conv_bn_act(b.cin, mid, 1, 1, b.act) if b.expand != 1 else nn.Identity()
        self.depthwise = conv_bn_act(mid, mid, b.kernel, b.stride, b.act, groups=mid)
        self.se = SqueezeExcite(mid) if b.se else nn.Identity()
        self.project = conv_bn_act(mid, b.cout, 1, 1, None)
        self.residual = b.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class Stem(nn.Module):
    def __init__(self, b: Block) -> None:
        super().__init__()
        self.conv = conv_bn_act(b.cin, b.cout, b.kernel, b.stride, b.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Head(nn.Module):
    """1x1 conv to the feature width, global average pool, linear classifier."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        self.conv = conv_bn_act(b.cin, b.cout, 1, 1, b.act)
        self.classifier = nn.Linear(b.cout, b.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(x).mean((2, 3)))


def build_block(b: Block) -> nn.Module:
    """The module for a block spec (identity for ``skip``)."""
    if b.op == "skip":
        return nn.Identity()
    return {"stem": Stem, "mbconv": MBConv, "head": Head}[b.op](b)
