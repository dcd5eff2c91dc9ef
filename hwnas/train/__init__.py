"""Supernet training into accuracy tables (PONAS), EcoNAS proxies, PWSNAS shrinking.

Importing this package imports torch.
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import DataSplit, load_data
from .ponas import TrainConfig, TrainResult, data_for, evaluate_path, train_accuracy_table
from .proxy import Proxy
from .shrink import angle_scores, shrink_keep, shrink_supernet
from .supernet import Supernet, extract_subnet, sample_path

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint", "DataSplit", "load_data",
           "TrainConfig", "TrainResult", "data_for", "evaluate_path", "train_accuracy_table",
           "Proxy", "angle_scores", "shrink_keep", "shrink_supernet", "Supernet",
           "extract_subnet", "sample_path"]
