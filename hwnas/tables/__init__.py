"""Device tables (latency) and accuracy tables (PONAS). No runtime is imported here."""

from .accuracy import AccuracyTable, load_accuracy_table
from .device import Calibration, DeviceTable, LatencyStat, Prediction, load_device_table

__all__ = ["AccuracyTable", "load_accuracy_table", "Calibration", "DeviceTable", "LatencyStat",
           "Prediction", "load_device_table"]
