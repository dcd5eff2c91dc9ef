"""PWSNAS-style search-space shrinking with the angle-based metric.

The metric of a path is the angle between the vector of all its weights now and the same
vector at initialisation (weights that moved further learned more); an operator's score is
the mean angle over sampled paths that contain it. A shrinking round drops the weakest
operator of every layer that still has more than ``keep_min`` of them.
"""

from __future__ import annotations

import math
import random
from typing import Mapping, Sequence

import torch

from ..spaces import SearchSpace
from .supernet import Supernet, sample_path


def _module_terms(supernet: Supernet, init: Mapping[str, torch.Tensor]
                  ) -> dict[str, tuple[float, float, float]]:
    """Per module prefix (``stem``, ``fixed``, ``layers.i.choice``, ``head``): dot, |w|², |w0|²."""
    terms: dict[str, list[float]] = {}
    for name, p in supernet.named_parameters():
        if name not in init:
            continue
        parts = name.split(".")
        prefix = ".".join(parts[:3]) if parts[0] == "layers" else parts[0]
        w, w0 = p.detach().double().flatten(), init[name].double().flatten()
        t = terms.setdefault(prefix, [0.0, 0.0, 0.0])
        t[0] += float(w @ w0)
        t[1] += float(w @ w)
        t[2] += float(w0 @ w0)
    return {k: (v[0], v[1], v[2]) for k, v in terms.items()}


def path_angle(terms: Mapping[str, tuple[float, float, float]], choices: Sequence[str]) -> float:
    keys = ["stem", "fixed", "head"] + [f"layers.{i}.{c}" for i, c in enumerate(choices)]
    dot = n1 = n0 = 0.0
    for k in keys:
        if k in terms:  # parameter-free blocks (skip) add nothing
            d, a, b = terms[k]
            dot, n1, n0 = dot + d, n1 + a, n0 + b
    if n1 <= 0.0 or n0 <= 0.0:
        return 0.0
    return math.acos(max(-1.0, min(1.0, dot / math.sqrt(n1 * n0))))


def angle_scores(supernet: Supernet, init: Mapping[str, torch.Tensor], paths: int,
                 seed: int) -> list[dict[str, float]]:
    """Per layer and operator, the mean angle over ``paths`` sampled paths containing it."""
    space = supernet.space
    terms = _module_terms(supernet, init)
    out = []
    for i, layer in enumerate(space.layers):
        row = {}
        for c in layer.choices:
            rng = random.Random(f"angle:{seed}:{i}:{c}")
            pin: list[str | None] = [None] * len(space.layers)
            pin[i] = c
            row[c] = sum(path_angle(terms, sample_path(space, rng, pin))
                         for _ in range(paths)) / paths
        out.append(row)
    return out


def shrink_keep(space: SearchSpace, scores: Sequence[Mapping[str, float]], drop: int = 1,
                keep_min: int = 1) -> list[list[str]]:
    """Choices each layer keeps after dropping its ``drop`` lowest-scored operators."""
    keep = []
    for layer, row in zip(space.layers, scores):
        ranked = sorted(layer.choices, key=lambda c: (row[c], c), reverse=True)
        n = max(keep_min, len(ranked) - drop)
        kept = set(ranked[:n])
        keep.append([c for c in layer.choices if c in kept])
    return keep


def shrink_supernet(supernet: Supernet, keep: Sequence[Sequence[str]],
                    target: SearchSpace) -> tuple[Supernet, SearchSpace]:
    """A supernet over the kept operators, its weights taken from ``supernet``, and the
    matching shrunk target space."""
    space = supernet.space.shrink(keep, name=_shrunk_name(supernet.space.name))
    new_target = target.shrink(keep, name=_shrunk_name(target.name))
    with torch.random.fork_rng(devices=[]):
        net = Supernet(space)
    src = supernet.state_dict()
    net.load_state_dict({k: src[k] for k in net.state_dict()}, strict=True)
    return net, new_target


def _shrunk_name(name: str) -> str:
    return name if name.endswith("-shrunk") else f"{name}-shrunk"
