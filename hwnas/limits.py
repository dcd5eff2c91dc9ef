"""Bounds on a job's numbers (budgets, seeds, learning rates), checked before any work.

A value that would fail hours later (a seed numpy refuses once training is done, a
learning rate that makes every weight NaN and is refused only when the results are
written), build the same engine twice into one folder (a budget given twice), or run
for days (ten thousand budgets) is one line and exit status 2 up front.
"""

from __future__ import annotations

import math
from typing import Sequence

from .errors import UserError

MAX_BUDGETS = 64
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit at the narrowest


def check_seed(seed: object, flag: str = "the seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{flag} must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def check_budgets(budgets: Sequence[float], flag: str = "budgets") -> tuple[float, ...]:
    """Positive finite budgets, at most ``MAX_BUDGETS`` of them, none given twice (each
    budget's engine is one folder of the run)."""
    out = tuple(budgets)
    if len(out) > MAX_BUDGETS:
        raise UserError(f"{flag}: {len(out)} budgets; a run builds one engine per budget, "
                        f"at most {MAX_BUDGETS}")
    if any(not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0) for b in out):
        raise UserError(f"{flag}: budgets must be positive, finite numbers of milliseconds")
    seen: set[str] = set()
    for b in out:
        key = f"{b:g}"  # the engine folder's name: 0.3 and 0.30 are one budget
        if key in seen:
            raise UserError(f"{flag}: budget {key} ms is given twice; each budget is built "
                            "once")
        seen.add(key)
    return out


def check_rate(value: object, flag: str) -> float:
    """A learning rate: a positive, finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (math.isfinite(value) and value > 0):
        raise UserError(f"{flag} must be a positive, finite number, got {value!r}")
    return float(value)
