"""Supernet checkpoints: safe to load, atomic to write, tied to one space.

A checkpoint is a plain dict of tensors and JSON strings saved with ``torch.save`` and read
with ``torch.load(..., weights_only=True)``: nothing is unpickled from a user's file. It
holds the weights, the initial weights (the angle metric of shrinking measures against
them), the optimizer state and how far training got, so an interrupted run resumes. The
previous file is replaced only by a complete new one (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from hwnas_profilers.fileformat import KINDS, FormatError, atomic_write, loads, number, one_line

from ..errors import UserError
from ..fileio import check_header
from ..spaces import SearchSpace, space_from_dict

if TYPE_CHECKING:
    from .data import DataSplit
    from .supernet import Supernet

CHECKPOINT_KIND = "hwnas.supernet_checkpoint"
CHECKPOINT_SCHEMA = KINDS[CHECKPOINT_KIND]
CHECKPOINT_NAME = "supernet.pt"


@dataclass(frozen=True)
class Checkpoint:
    space: SearchSpace            # the space the weights belong to (a proxy space, maybe)
    target: SearchSpace           # the space the accuracy table is for
    config: Mapping[str, Any]
    progress: Mapping[str, Any]   # {"meta_epoch": n, "shrink_round": r, ...}
    model: Mapping[str, torch.Tensor]
    init: Mapping[str, torch.Tensor] = field(default_factory=dict)
    optimizer: Mapping[str, Any] | None = None

    @property
    def unshared(self) -> bool:
        """Whether the weights are an unshared supernet's (``hwnas train --unshare``)."""
        return bool(self.progress.get("unshared"))

    def supernet(self) -> "Supernet":
        """The supernet of ``space`` with these weights."""
        from .supernet import Supernet

        net = Supernet(self.space, unshared=self.unshared)
        try:
            net.load_state_dict(dict(self.model), strict=True)
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or ["?"])[0]
            raise UserError(f"checkpoint weights do not fit space {self.space.name}: "
                            f"{first[:200]}") from None
        return net

    def data_split(self, ref: str, space: SearchSpace | None = None,
                   default_seed: int = 0, source: str = "checkpoint") -> "DataSplit":
        """The data ``ref`` split as it was for training (the checkpoint's seed, validation
        and held-out test fractions), at ``space``'s input size (default: the checkpoint's)."""
        from .data import load_data

        cfg = self.config if isinstance(self.config, Mapping) else {}
        try:
            seed = int(cfg.get("seed", default_seed))
            val_fraction = float(cfg.get("val_fraction", 0.2))
            test_fraction = float(cfg.get("test_fraction", 0.0))
        except (TypeError, ValueError):
            raise UserError(f"{source} is damaged (its config holds a non-number where a "
                            "number belongs)") from None
        sp = space or self.space
        return load_data(ref, sp.input, sp.classes, seed, val_fraction, test_fraction)


def save_checkpoint(path: "str | Path", ck: Checkpoint) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "kind": CHECKPOINT_KIND, "schema": CHECKPOINT_SCHEMA,
        "space_id": ck.space.id, "space_spec": json.dumps(ck.space.to_dict()),
        "target_id": ck.target.id, "target_spec": json.dumps(ck.target.to_dict()),
        "config": json.dumps(dict(ck.config)), "progress": json.dumps(dict(ck.progress)),
        "model": dict(ck.model), "init": dict(ck.init),
        "optimizer": ck.optimizer if ck.optimizer is not None else {},
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: "str | Path", space: SearchSpace | None = None) -> Checkpoint:
    """Read a checkpoint; with ``space``, refuse one made for another space."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol is refused below anyway
            warnings.simplefilter("ignore")
            d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is bad input
        text = str(exc)
        if "weights_only" in text or "Weights only load failed" in text:
            # torch's own message goes on to advise weights_only=False: never the advice to
            # give about a file from elsewhere
            raise UserError(f"checkpoint {path} holds objects other than tensors and plain data; "
                            "refused (nothing in it was run). hwnas checkpoints never do: "
                            "is it from another tool, or tampered with?") from None
        first = (text.strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"checkpoint {path} cannot be read: {one_line(first, 200)}") from None
    check_header(d, CHECKPOINT_KIND, CHECKPOINT_SCHEMA, f"checkpoint {path}",
                 "supernet checkpoint", UserError)
    src = f"checkpoint {path}"
    try:
        specs = {k: d[k] for k in ("space_spec", "target_spec", "config", "progress")}
        if not all(isinstance(v, str) for v in specs.values()):
            raise TypeError("space_spec, target_spec, config and progress must be JSON text")
        decoded = {k: loads(v, f"{src} ({k})") for k, v in specs.items()}
        if not all(isinstance(v, dict) for v in decoded.values()):
            raise TypeError("space_spec, target_spec, config and progress must be mappings")
        ck_space = space_from_dict(decoded["space_spec"])
        target = space_from_dict(decoded["target_spec"])
        config, progress = decoded["config"], decoded["progress"]
        for k in ("meta_epoch", "shrink_round", "unshare_epoch"):
            number(progress.get(k, 0), f"{src}: progress {k}", 0, 1e6, integer=True,
                   error=UserError)
        if not isinstance(progress.get("unshared", False), bool):
            raise TypeError("progress unshared must be true or false")
        if not isinstance(progress.get("base_target", ""), str):
            raise TypeError("progress base_target must be a space id")
        for k in ("model", "init"):
            sd = d.get(k, {})
            if not isinstance(sd, Mapping) or not all(
                    isinstance(n, str) and isinstance(t, torch.Tensor) for n, t in sd.items()):
                raise TypeError(f"{k} must map parameter names to tensors")
        opt = d.get("optimizer") or {}
        if not isinstance(opt, Mapping) or (opt and not (
                isinstance(opt.get("state"), Mapping)
                and isinstance(opt.get("param_groups"), list))):
            raise TypeError("optimizer must be a state dict (state, param_groups)")
    except (KeyError, TypeError, ValueError, FormatError) as exc:
        raise UserError(f"checkpoint {path} is damaged ({one_line(str(exc), 200)})") from None
    if ck_space.id != d.get("space_id") or target.id != d.get("target_id"):
        raise UserError(f"checkpoint {path} is damaged: its space does not match its space id")
    if space is not None and space.id not in (ck_space.id, target.id):
        raise UserError(f"checkpoint {path} is for space {target.name} (id {target.id}), "
                        f"not {space.name} (id {space.id})")
    return Checkpoint(ck_space, target, config, progress, d.get("model", {}),
                      d.get("init", {}), d.get("optimizer") or None)
