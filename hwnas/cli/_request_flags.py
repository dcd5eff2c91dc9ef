"""Flags that name one request the same way in every command that takes it.

``hwnas run`` and ``hwnas export`` ask for int8 with ``--quantization qat|ptq|auto`` and
the post-training quantizer with ``--ptq-with``; ``hwnas train`` and ``hwnas run`` say where
the supernet trains with ``--train-device``. The older spellings (``run --int8``,
``export --qat`` / ``--ptq``, ``train --device``) still parse, hidden from the help, so
scripts written for them keep working.
"""

from __future__ import annotations

import argparse

from ..engines.build import PTQ_LIBRARIES, QUANTIZATION


def add_quantization_flags(p: argparse.ArgumentParser, default: str) -> None:
    """``--quantization`` and ``--ptq-with`` (``default``: the command's quantization)."""
    p.add_argument("--quantization", choices=QUANTIZATION, default=default,
                   help="how an int8 engine is quantized: qat (quantization-aware "
                   "fine-tuning), ptq (post-training, by --ptq-with), auto (QAT except on "
                   f"onnxruntime and runtimes without QAT; see README); default {default}")
    p.add_argument("--ptq-with", choices=PTQ_LIBRARIES, default="onnxruntime",
                   help="the library that quantizes post-training (--quantization ptq, or "
                   "auto where it picks ptq): onnxruntime (default) or nncf; a flag of its "
                   "own because it names a library, not a way to quantize")
    p.add_argument("--ptq", dest="ptq_with", choices=PTQ_LIBRARIES, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # old name of --ptq-with


def add_old_quantization_alias(p: argparse.ArgumentParser, name: str) -> None:
    """The old spelling of a command's quantization request, hidden: ``--qat`` (a switch
    meaning ``--quantization qat``) or ``--int8`` (taking the same choices)."""
    if name == "--qat":
        p.add_argument("--qat", dest="quantization", action="store_const", const="qat",
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    else:
        p.add_argument(name, dest="quantization", choices=QUANTIZATION,
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_train_device_flag(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--train-device`` (``--device`` in ``train`` before it meant the same thing)."""
    p.add_argument("--train-device", choices=("cpu", "cuda"), default="cpu", help=help_text)


def add_old_train_device_alias(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", dest="train_device", choices=("cpu", "cuda"),
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
