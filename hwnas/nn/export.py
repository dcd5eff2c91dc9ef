"""ONNX export of sub-networks and single blocks, checked with ``onnx.checker``."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from hwnas_profilers.fileformat import atomic_path
from torch import nn

from ..arch import Architecture
from ..blocks import Block
from ..errors import require
from ..spaces import SearchSpace
from .layers import build_block
from .subnet import build_subnet

OPSET = 17


def export_onnx(module: nn.Module, input_shape: tuple[int, ...], path: "str | Path",
                opset: int = OPSET, batch: int = 1) -> Path:
    """Export ``module`` (eval mode, NCHW float32, fixed ``batch``) and check the file."""
    onnx = require("onnx", "torch")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    x = torch.zeros(batch, *input_shape)
    # a unique temporary name (two processes exporting one file must not collide),
    # renamed over ``path`` only once the model passed the checker
    # The TorchScript exporter (dynamo=False), deprecated, on purpose, with its deprecation
    # warning silenced: measured with torch 2.13.0 on 2 cores, the supported exporter
    # (dynamo=True) took 2.4-8.7 s per tiny-32 network against 0.3-0.5 s, and a device
    # bundle exports every block plus the calibration networks (54 files for tiny-32,
    # several hundred for the larger spaces), which would cost the main job minutes of
    # its 10; it also cannot write opset 17 (its version converter fails on these graphs:
    # "axes_input_to_attribute ... No initializer or constant input") and would change
    # every graph the shipped device tables were measured on. Move when the legacy
    # exporter is removed, with the tables re-profiled.
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(tmp), opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["output"])
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
    return path


def export_architecture(space: SearchSpace, arch: Architecture, path: "str | Path",
                        model: nn.Module | None = None, seed: int = 0, batch: int = 1) -> Path:
    """ONNX file of a whole architecture (fresh weights unless ``model`` is given)."""
    net = model if model is not None else build_subnet(space, arch, seed)
    return export_onnx(net, (space.input[2], space.input[0], space.input[1]), path, batch=batch)


def block_module(block: Block, seed: int = 0) -> nn.Module:
    """The module a block bundle measures for ``block`` (fresh weights from ``seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_block(block)
    return _Identity() if block.op == "skip" else module.eval()


def export_block(block: Block, path: "str | Path", seed: int = 0, batch: int = 1) -> Path:
    """ONNX file of one block with its own input shape (for profiling)."""
    return export_onnx(block_module(block, seed), (block.cin, block.h, block.w), path,
                       batch=batch)


class _Identity(nn.Module):
    # nn.Identity exports to a graph with no nodes; an explicit Identity op keeps it runnable
    # and measurable (the runtime still pays the per-call overhead a skip costs in isolation).
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0
