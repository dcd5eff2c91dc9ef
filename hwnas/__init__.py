"""hwnas: hardware-aware deployment for neural architecture search.

Importing this package is light (numpy, pyyaml): torch and the runtimes are imported by
the modules that need them (``hwnas.nn``, the profilers' backends, training).
"""

from .arch import Architecture, load_architecture, sample_architecture
from .blocks import Block
from .errors import (CHECK_FAILED, ArchitectureError, HwnasWarning, MissingDependency, SpaceError,
                     TableError, UserError)
from .spaces import SearchSpace, builtin_spaces, load_space, space_from_dict
from .tables import AccuracyTable, DeviceTable, load_accuracy_table, load_device_table

__version__ = "0.1.0"

__all__ = [
    "Architecture", "load_architecture", "sample_architecture", "Block", "ArchitectureError",
    "HwnasWarning", "CHECK_FAILED",
    "MissingDependency", "SpaceError", "TableError", "UserError", "SearchSpace",
    "builtin_spaces", "load_space", "space_from_dict", "AccuracyTable", "DeviceTable",
    "load_accuracy_table", "load_device_table", "__version__",
]
