"""The old home of the chosen network's steps, now in modules named for what they do:
:mod:`hwnas.engines.finetune` (the standalone network, fine-tuning, batch-norm folding),
:mod:`hwnas.engines.model_file` (its fp32 ONNX file and metadata) and
:mod:`hwnas.engines.quantize` (fp16, int8 by post-training quantization or QAT). Kept so
code that imports ``hwnas.engines.network`` keeps working.
"""

from .finetune import finetune, fold_bn, standalone, steps_per_epoch
from .model_file import export_fp32, model_metadata, stamp_onnx
from .quantize import (calibration_images, export_fp16, nncf_output, ptq_onnx, qat,
                       quiet_nncf)

__all__ = ["finetune", "fold_bn", "standalone", "steps_per_epoch", "export_fp32",
           "model_metadata", "stamp_onnx", "calibration_images", "export_fp16", "nncf_output",
           "ptq_onnx", "qat", "quiet_nncf"]
