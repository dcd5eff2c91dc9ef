"""PyTorch modules for blocks and sub-networks. Importing this package imports torch."""

from .layers import build_block
from .subnet import SubNet, build_subnet
from .export import export_onnx, export_architecture, export_block

__all__ = ["build_block", "SubNet", "build_subnet", "export_onnx", "export_architecture",
           "export_block"]
