"""Torch for the commands that train or run networks: OpenMP waiting and thread count."""

from __future__ import annotations

from typing import Any


def passive_openmp() -> None:
    """Ask OpenMP for passive waiting, the one place it is set. On a shared machine another
    process often holds a core, and OpenMP's default spin-wait then turns every parallel
    region into a busy wait (40-80x slower epochs measured on 2 cores). It applies only if
    torch is not loaded yet, so commands call this before importing it."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load_torch(threads: int | None = None) -> Any:
    """torch, after :func:`passive_openmp`, with ``threads`` intra-op threads if given."""
    from ..errors import UserError, require

    passive_openmp()
    torch = require("torch", "torch")
    if threads is not None:
        if threads < 1:
            raise UserError("--threads must be >= 1")
        torch.set_num_threads(threads)
    return torch
