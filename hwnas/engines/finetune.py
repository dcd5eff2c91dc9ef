"""The chosen network as a standalone model, fine-tuned, with batch norm folded.

From a supernet and an architecture: the sub-network with inherited weights, its
batch-norm statistics re-estimated on training data, optionally fine-tuned; then batch
norm folded into the convolutions (``torch.nn.utils.fusion.fuse_conv_bn_eval``), so every
engine and the quantizer (:mod:`hwnas.engines.quantize`) see the network a deployment runs.
"""

from __future__ import annotations

from typing import Any


def standalone(supernet: Any, arch: Any, data: Any | None, seed: int = 0) -> Any:
    """The sub-network with inherited weights, BN statistics re-estimated on ``data``."""
    from ..train.loop import recalibrate_bn
    from ..train.supernet import extract_subnet

    net = extract_subnet(supernet, arch)
    if data is not None:
        recalibrate_bn(net, data.train_x, 64, 4, seed)
    return net.eval()


def finetune(net: Any, data: Any, steps: int, seed: int, lr: float = 0.01) -> Any:
    """``steps`` SGD steps on the training split (no-op for 0)."""
    if steps <= 0:
        return net.eval()
    from ..train.loop import sgd, train_steps

    train_steps(net, data.train_x, data.train_y, sgd(net.parameters(), lr), lambda r: None,
                steps, 64, seed)
    return net.eval()


def steps_per_epoch(data: Any, batch: int = 64) -> int:
    return max(1, len(data.train_y) // batch)


def fold_bn(net: Any) -> Any:
    """A copy of ``net`` (eval) with every Conv2d+BatchNorm2d pair fused into one conv."""
    import copy

    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for mod in net.modules():
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], nn.Conv2d) and isinstance(mod[i + 1], nn.BatchNorm2d):
                    mod[i] = fuse_conv_bn_eval(mod[i], mod[i + 1])
                    mod[i + 1] = nn.Identity()
    return net
