"""Supernet checkpoints: safe to load, atomic to write, tied to one space.

A checkpoint is a plain dict of tensors and JSON strings saved with ``torch.save`` and read
with ``torch.load(..., weights_only=True)``: nothing is unpickled from a user's file. It
holds the weights, the initial weights (the angle metric of shrinking measures against
them), the optimizer state and how far training got, so an interrupted run resumes. The
previous file is replaced only by a complete new one (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from ..errors import UserError
from ..fileio import check_header
from ..spaces import SearchSpace, space_from_dict

if TYPE_CHECKING:
    from .supernet import Supernet

CHECKPOINT_KIND = "hwnas.supernet_checkpoint"
CHECKPOINT_SCHEMA = 1
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

    def supernet(self) -> "Supernet":
        """The supernet of ``space`` with these weights."""
        from .supernet import Supernet

        net = Supernet(self.space)
        try:
            net.load_state_dict(dict(self.model), strict=True)
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or ["?"])[0]
            raise UserError(f"checkpoint weights do not fit space {self.space.name}: "
                            f"{first[:200]}") from None
        return net


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: "str | Path", space: SearchSpace | None = None) -> Checkpoint:
    """Read a checkpoint; with ``space``, refuse one made for another space."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol is refused below anyway
            warnings.simplefilter("ignore")
            d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable or unsafe file is bad input, not a bug
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"checkpoint {path} cannot be read safely: {first[:200]}") from None
    check_header(d, CHECKPOINT_KIND, CHECKPOINT_SCHEMA, f"checkpoint {path}",
                 "supernet checkpoint", UserError)
    try:
        ck_space = space_from_dict(json.loads(d["space_spec"]))
        target = space_from_dict(json.loads(d["target_spec"]))
        config, progress = json.loads(d["config"]), json.loads(d["progress"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"checkpoint {path} is damaged ({exc.__class__.__name__}: {exc})") from None
    if ck_space.id != d.get("space_id") or target.id != d.get("target_id"):
        raise UserError(f"checkpoint {path} is damaged: its space does not match its space id")
    if space is not None and space.id not in (ck_space.id, target.id):
        raise UserError(f"checkpoint {path} is for space {target.name} (id {target.id}), "
                        f"not {space.name} (id {space.id})")
    return Checkpoint(ck_space, target, config, progress, d.get("model", {}),
                      d.get("init", {}), d.get("optimizer") or None)
